//! Tells the library whether it is being compiled without optimisation.
//!
//! The kernels are written as many small `#[inline(always)]` functions that meet in one
//! function per tier (the one carrying the target features). Unoptimised, LLVM keeps a stack
//! slot for every temporary of every inlined call, so the largest kernels' frames reach 2 MB
//! and overflow a 2 MiB thread stack (a test thread, a rayon or tokio worker) in a
//! dependent's debug build. At opt-level 0 (`cfg(losskit_unoptimized)`) those functions are
//! left to be called instead: each frame holds only its own temporaries, the bits are the
//! same, and nothing is slower that was fast.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-check-cfg=cfg(losskit_unoptimized)");
    if std::env::var("OPT_LEVEL").as_deref() == Ok("0") {
        println!("cargo:rustc-cfg=losskit_unoptimized");
    }
}
