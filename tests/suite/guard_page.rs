//! Out-of-bounds accesses caught by the MMU: every slice a kernel gets is placed so that it
//! ends exactly at a `PROT_NONE` page (or starts right after one), and every kernel is run on
//! every tier this CPU has. A vector load or store past either end would raise SIGSEGV and kill
//! the test. Results are also compared bit for bit with the same calls on ordinary heap copies.
//! The kernels are the losses, their `each` forms and the fused loss-and-gradient forms (the
//! gradient written into a guarded slice; cross-entropy also in place), and the per-class
//! `[rows, classes]` losses (bce_with_logits with `pos_weight` per class, multilabel_soft_margin,
//! multi_margin, multilabel_margin, cosine_embedding, triplet_margin) with every argument
//! guarded, their per-class slices included.
#![cfg(unix)]

use std::ptr;

use losskit::{with_tier, CrossEntropy, Label, Reduction, Tier};

use crate::registry::POINTWISE;

/// An anonymous mapping of `[guard page][usable pages][guard page]`, the guards `PROT_NONE`.
struct Region {
    base: *mut u8,
    page: usize,
    usable: usize,
}

impl Region {
    fn new(bytes: usize) -> Region {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        assert!(page.is_power_of_two() && page >= 4096);
        let usable = bytes.div_ceil(page).max(1) * page;
        let total = usable + 2 * page;
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED, "mmap failed");
        let base = base as *mut u8;
        // SAFETY: both ranges are whole pages inside the mapping just created.
        unsafe {
            assert_eq!(
                libc::mprotect(base as *mut libc::c_void, page, libc::PROT_NONE),
                0
            );
            assert_eq!(
                libc::mprotect(
                    base.add(page + usable) as *mut libc::c_void,
                    page,
                    libc::PROT_NONE
                ),
                0
            );
        }
        Region { base, page, usable }
    }

    /// Copies `values` into the region so that they end exactly at the trailing guard page
    /// (`at_end`) or start exactly after the leading one, and returns them.
    fn place<T: Copy>(&mut self, values: &[T], at_end: bool) -> &mut [T] {
        let bytes = std::mem::size_of_val(values);
        assert!(bytes <= self.usable, "region too small");
        let offset = if at_end {
            self.page + self.usable - bytes
        } else {
            self.page
        };
        assert_eq!(offset % std::mem::align_of::<T>(), 0);
        // SAFETY: `offset..offset + bytes` lies in the read-write part of the mapping, which
        // `&mut self` borrows exclusively for the returned slice's lifetime; the address is
        // aligned for T (page-aligned ends, sizes multiples of size_of::<T>()), and T is Copy
        // (plain floats and integers), so any bytes copied in are valid values.
        unsafe {
            let start = self.base.add(offset) as *mut T;
            ptr::copy_nonoverlapping(values.as_ptr(), start, values.len());
            std::slice::from_raw_parts_mut(start, values.len())
        }
    }

    /// The first byte of the trailing guard page.
    fn guard_end(&self) -> *const u8 {
        // SAFETY: one past the usable pages is still inside the mapping (the guard page).
        unsafe { self.base.add(self.page + self.usable) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `new`; no slice into it outlives `self`.
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, self.usable + 2 * self.page);
        }
    }
}

#[test]
fn the_guard_page_has_teeth() {
    // Re-run this test binary as a child that reads one byte past a region: it must die of
    // SIGSEGV, or the guards below would not catch anything.
    if std::env::var_os("LOSSKIT_GUARD_CHILD").is_some() {
        let r = Region::new(4096);
        // SAFETY: deliberately not: this reads the PROT_NONE guard page to prove it faults. It
        // only runs in the child process spawned below.
        let v = unsafe { ptr::read_volatile(r.guard_end()) };
        println!("read {v} from the guard page without faulting");
        return;
    }
    use std::os::unix::process::ExitStatusExt;
    // The test's name in this binary: its module path without the crate's name.
    let name = match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::the_guard_page_has_teeth"),
        None => "the_guard_page_has_teeth".to_string(),
    };
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &name, "--nocapture", "--test-threads=1"])
        .env("LOSSKIT_GUARD_CHILD", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGSEGV),
        "child exited with {status:?}, not SIGSEGV"
    );
}

use crate::common::Elem as E;

/// Lengths: every small one (all vector-width tails and unrolled bodies), block and chunk
/// edges, and two above the parallel threshold.
fn lengths() -> Vec<usize> {
    let mut v: Vec<usize> = (0..=64).collect();
    v.extend([
        95, 96, 97, 127, 128, 129, 255, 256, 257, 1023, 1024, 1025, 4099, 65_535, 65_536, 65_537,
        131_073, 200_003,
    ]);
    v
}

/// Probabilities in [0, 1] (valid for every pointwise loss: the registry's domains are all
/// supersets of [0, 1]).
fn values<T: E>(n: usize, salt: usize) -> Vec<T> {
    (0..n)
        .map(|i| T::of(((i * 37 + salt * 11) % 101) as f64 / 100.0))
        .collect()
}

/// Every pointwise loss of the registry at every setting, reduced, each and fused with the
/// gradient (the loss, then the gradient it wrote to `out`): the bits of every result.
fn pointwise<T: E>(x: &[T], y: &[T], out: &mut [T]) -> Vec<u64> {
    let mut bits = Vec::new();
    for loss in POINTWISE {
        for &setting in loss.settings {
            let p = setting.map(T::of);
            for r in [Reduction::Mean, Reduction::Sum] {
                bits.push(loss.reduce(x, y, p, r).unwrap().bits());
            }
            loss.each(x, y, p, out).unwrap();
            bits.extend(out.iter().map(|v| v.bits()));
            for r in [Reduction::Mean, Reduction::Sum] {
                bits.push(loss.and_grad(x, y, p, r, out).unwrap().bits());
                bits.extend(out.iter().map(|v| v.bits()));
            }
        }
    }
    bits
}

fn pointwise_at_guards<T: E>() {
    let lens = lengths();
    let max = *lens.iter().max().unwrap() * std::mem::size_of::<T>();
    let (mut rx, mut ry, mut rout) = (Region::new(max), Region::new(max), Region::new(max));
    for tier in Tier::available() {
        with_tier(tier, || {
            for &n in &lens {
                let (x, y) = (values::<T>(n, 1), values::<T>(n, 2));
                let mut heap_out = vec![T::of(0.0); n];
                let want = pointwise(&x, &y, &mut heap_out);
                for at_end in [true, false] {
                    let gx = rx.place(&x, at_end);
                    let gy = ry.place(&y, at_end);
                    let gout = rout.place(&vec![T::of(-7.0); n], at_end);
                    let got = pointwise(gx, gy, gout);
                    assert!(
                        got == want,
                        "n={n} at_end={at_end} on {tier}: results differ from heap slices"
                    );
                }
            }
        })
        .unwrap();
    }
}

#[test]
fn pointwise_kernels_stay_inside_f32_slices() {
    pointwise_at_guards::<f32>();
}

#[test]
fn pointwise_kernels_stay_inside_f64_slices() {
    pointwise_at_guards::<f64>();
}

/// Labels of one integer type for `rows` rows of `classes`, with every 5th row ignored where
/// the type can hold the ignore index.
fn labels<L: Label>(rows: usize, classes: usize, make: fn(i64) -> L, ignore: i64) -> Vec<L> {
    (0..rows)
        .map(|r| {
            if r % 5 == 4 {
                make(ignore)
            } else {
                make(((r * 7) % classes) as i64)
            }
        })
        .collect()
}

/// Every cross-entropy form: the bits of every result.
#[allow(clippy::too_many_arguments)]
fn cross_entropy<T: E, L: Label>(
    logits: &[T],
    classes: usize,
    labels: &[L],
    ignore: i64,
    probs: &[T],
    weight: &[T],
    out: &mut [T],
    grad: Option<&mut [T]>,
) -> Vec<u64> {
    let mut bits = Vec::new();
    let forms = [
        CrossEntropy::new().ignore_index(ignore),
        CrossEntropy::new().ignore_index(ignore).weight(weight),
        CrossEntropy::new()
            .ignore_index(ignore)
            .label_smoothing(0.2),
        CrossEntropy::new()
            .ignore_index(ignore)
            .weight(weight)
            .label_smoothing(0.05),
    ];
    for ce in &forms {
        for r in [Reduction::Mean, Reduction::Sum] {
            bits.push(ce.loss(logits, classes, labels, r).unwrap().bits());
            bits.push(ce.loss_probs(logits, classes, probs, r).unwrap().bits());
        }
        ce.each(logits, classes, labels, out).unwrap();
        bits.extend(out.iter().map(|v| v.bits()));
        ce.each_probs(logits, classes, probs, out).unwrap();
        bits.extend(out.iter().map(|v| v.bits()));
    }
    // Gradients (`grad` holds `rows · classes`): out of place, from probabilities, in place.
    if let Some(grad) = grad {
        for ce in &forms {
            for r in [Reduction::Mean, Reduction::Sum] {
                let loss = ce.loss_and_grad(logits, classes, labels, r, grad).unwrap();
                bits.push(loss.bits());
                bits.extend(grad.iter().map(|v| v.bits()));
                let loss = ce
                    .loss_and_grad_probs(logits, classes, probs, r, grad)
                    .unwrap();
                bits.push(loss.bits());
                bits.extend(grad.iter().map(|v| v.bits()));
                grad.copy_from_slice(logits);
                let loss = ce.loss_and_grad_in_place(grad, classes, labels, r).unwrap();
                bits.push(loss.bits());
                bits.extend(grad.iter().map(|v| v.bits()));
            }
        }
    }
    if ignore == -100 {
        for r in [Reduction::Mean, Reduction::Sum] {
            bits.push(
                losskit::cross_entropy(logits, classes, labels, r)
                    .unwrap()
                    .bits(),
            );
            bits.push(
                losskit::cross_entropy_probs(logits, classes, probs, r)
                    .unwrap()
                    .bits(),
            );
        }
    }
    bits
}

/// Shapes: short rows (one row per lane, with ragged lane groups), rows around vector and block
/// widths, long rows, and one above the parallel threshold.
fn shapes() -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    for classes in [
        1usize, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 256, 257, 1000,
    ] {
        for rows in [0usize, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 33] {
            v.push((rows, classes));
        }
    }
    v.extend([(4, 5000), (1, 70_000), (2_000, 70), (300, 513)]);
    v
}

struct CeRegions {
    logits: Region,
    probs: Region,
    weight: Region,
    labels: Region,
    out: Region,
    grad: Region,
}

fn ce_for_label<T: E, L: Label>(
    g: &mut CeRegions,
    tier: Tier,
    rows: usize,
    classes: usize,
    make: fn(i64) -> L,
    ignore: i64,
    grads: bool,
) {
    let logits: Vec<T> = (0..rows * classes)
        .map(|i| T::of(((i * 29) % 97) as f64 * 0.25 - 12.0))
        .collect();
    let probs: Vec<T> = (0..rows * classes)
        .map(|i| T::of(((i * 13) % 7) as f64 / 7.0 / classes as f64))
        .collect();
    let weight: Vec<T> = (0..classes).map(|c| T::of(0.5 + (c % 3) as f64)).collect();
    let labels = labels(rows, classes, make, ignore);
    let mut heap_out = vec![T::of(0.0); rows];
    let mut heap_grad = vec![T::of(0.0); rows * classes];
    let want = cross_entropy(
        &logits,
        classes,
        &labels,
        ignore,
        &probs,
        &weight,
        &mut heap_out,
        grads.then_some(&mut heap_grad[..]),
    );
    for at_end in [true, false] {
        let gl = g.logits.place(&logits, at_end);
        let gp = g.probs.place(&probs, at_end);
        let gw = g.weight.place(&weight, at_end);
        let glab = g.labels.place(&labels, at_end);
        let gout = g.out.place(&vec![T::of(-7.0); rows], at_end);
        let ggrad = g.grad.place(&vec![T::of(-7.0); rows * classes], at_end);
        let got = cross_entropy(
            gl,
            classes,
            glab,
            ignore,
            gp,
            gw,
            gout,
            grads.then_some(ggrad),
        );
        assert!(
            got == want,
            "{rows}x{classes} labels {} at_end={at_end} on {tier}: results differ from heap slices",
            std::any::type_name::<L>()
        );
    }
}

fn ce_at_guards<T: E>() {
    let shapes = shapes();
    let max_elems = shapes.iter().map(|&(r, c)| r * c).max().unwrap();
    let max_rows = shapes.iter().map(|&(r, _)| r).max().unwrap();
    let max_classes = shapes.iter().map(|&(_, c)| c).max().unwrap();
    let size = std::mem::size_of::<T>();
    let mut g = CeRegions {
        logits: Region::new(max_elems * size),
        probs: Region::new(max_elems * size),
        weight: Region::new(max_classes * size),
        labels: Region::new(max_rows * 8),
        out: Region::new(max_rows * size),
        grad: Region::new(max_elems * size),
    };
    for tier in Tier::available() {
        with_tier(tier, || {
            for &(rows, classes) in &shapes {
                // Gradients with one label type: they read labels as the losses do.
                ce_for_label::<T, i64>(&mut g, tier, rows, classes, |v| v, -100, true);
                ce_for_label::<T, i32>(&mut g, tier, rows, classes, |v| v as i32, -100, false);
                ce_for_label::<T, u32>(&mut g, tier, rows, classes, |v| v as u32, 1 << 20, false);
                ce_for_label::<T, u64>(&mut g, tier, rows, classes, |v| v as u64, 1 << 40, false);
                ce_for_label::<T, usize>(
                    &mut g,
                    tier,
                    rows,
                    classes,
                    |v| v as usize,
                    77_777,
                    false,
                );
            }
        })
        .unwrap();
    }
}

#[test]
fn cross_entropy_kernels_stay_inside_f32_slices() {
    ce_at_guards::<f32>();
}

#[test]
fn cross_entropy_kernels_stay_inside_f64_slices() {
    ce_at_guards::<f64>();
}

/// Every form of the per-class `[rows, classes]` losses — bce_with_logits with a per-class
/// `pos_weight` (without and with a per-element weight), multilabel_soft_margin and
/// multi_margin (p 1 and 2; without and with class weights), multilabel_margin (`targets` a
/// matrix of class lists), cosine_embedding (`t` as `x2`, `signs` as `y`) and triplet_margin (`x`, `t`, `w` as anchor, positive, negative; p 1 with
/// swap and p 2) — the bits of every result (losses, then what each form wrote).
#[allow(clippy::too_many_arguments)]
fn per_class_forms<T: E + losskit::Storage<Compute = T>>(
    x: &[T],
    t: &[T],
    w: &[T],
    pw: &[T],
    wc: &[T],
    labels: &[i64],
    targets: &[i64],
    signs: &[T],
    classes: usize,
    out: &mut [T],
    out2: &mut [T],
    out3: &mut [T],
    rows_out: &mut [T],
) -> Vec<u64> {
    let mut bits = Vec::new();
    for (p, swap) in [(1, true), (2, false)] {
        let triplet = losskit::TripletMargin::new().p(p).swap(swap);
        for r in [Reduction::Mean, Reduction::Sum] {
            bits.push(triplet.loss(x, t, w, classes, r).unwrap().bits());
            let fused = triplet.loss_and_grad(x, t, w, classes, r, out, out2, out3);
            bits.push(fused.unwrap().bits());
            bits.extend(
                out.iter()
                    .chain(out2.iter())
                    .chain(out3.iter())
                    .map(|v| v.bits()),
            );
        }
        triplet.each(x, t, w, classes, rows_out).unwrap();
        bits.extend(rows_out.iter().map(|v| v.bits()));
    }
    for r in [Reduction::Mean, Reduction::Sum] {
        bits.push(
            losskit::multilabel_margin(x, targets, classes, r)
                .unwrap()
                .bits(),
        );
        let fused = losskit::multilabel_margin_and_grad(x, targets, classes, r, out);
        bits.push(fused.unwrap().bits());
        bits.extend(out.iter().map(|v| v.bits()));
    }
    losskit::multilabel_margin_each(x, targets, classes, rows_out).unwrap();
    bits.extend(rows_out.iter().map(|v| v.bits()));
    let cosine = losskit::CosineEmbedding::new().margin(T::of(0.25));
    for r in [Reduction::Mean, Reduction::Sum] {
        bits.push(cosine.loss(x, t, signs, classes, r).unwrap().bits());
        let fused = cosine.loss_and_grad(x, t, signs, classes, r, out, out2);
        bits.push(fused.unwrap().bits());
        bits.extend(out.iter().chain(out2.iter()).map(|v| v.bits()));
    }
    cosine.each(x, t, signs, classes, rows_out).unwrap();
    bits.extend(rows_out.iter().map(|v| v.bits()));
    for weighted in [false, true] {
        let mut bce = losskit::BceWithLogitsPerClass::new(pw);
        let mut ml = losskit::MultilabelSoftMargin::new();
        if weighted {
            bce = bce.weight(w);
            ml = ml.weight(wc);
        }
        for r in [Reduction::Mean, Reduction::Sum] {
            bits.push(bce.loss(x, t, r).unwrap().bits());
            bits.push(bce.loss_and_grad(x, t, r, out).unwrap().bits());
            bits.extend(out.iter().map(|v| v.bits()));
            bits.push(ml.loss(x, t, classes, r).unwrap().bits());
            bits.push(ml.loss_and_grad(x, t, classes, r, out).unwrap().bits());
            bits.extend(out.iter().map(|v| v.bits()));
        }
        bce.each(x, t, out).unwrap();
        bits.extend(out.iter().map(|v| v.bits()));
        ml.each(x, t, classes, rows_out).unwrap();
        bits.extend(rows_out.iter().map(|v| v.bits()));
        for p in [1, 2] {
            let mut mm = losskit::MultiMargin::new().p(p).margin(T::of(0.75));
            if weighted {
                mm = mm.weight(wc);
            }
            for r in [Reduction::Mean, Reduction::Sum] {
                bits.push(mm.loss(x, classes, labels, r).unwrap().bits());
                bits.push(mm.loss_and_grad(x, classes, labels, r, out).unwrap().bits());
                bits.extend(out.iter().map(|v| v.bits()));
            }
            mm.each(x, classes, labels, rows_out).unwrap();
            bits.extend(rows_out.iter().map(|v| v.bits()));
        }
    }
    bits
}

fn per_class_at_guards<T: E + losskit::Storage<Compute = T>>() {
    let shapes: Vec<(usize, usize)> = [1usize, 3, 16, 17, 33, 64, 65, 100, 1000]
        .into_iter()
        .flat_map(|c| [0usize, 1, 2, 5, 70, 140_000 / c].map(|r| (r, c)))
        .collect();
    let max = 140_000 * std::mem::size_of::<T>();
    let mut regions: Vec<Region> = (0..7).map(|_| Region::new(max)).collect();
    let (mut label_region, mut target_region) =
        (Region::new(140_000 * 8), Region::new(140_000 * 8));
    let (mut sign_region, mut out2_region) = (Region::new(max), Region::new(max));
    let mut out3_region = Region::new(max);
    for tier in Tier::available() {
        with_tier(tier, || {
            for &(rows, classes) in &shapes {
                let n = rows * classes;
                let (x, t, w) = (values::<T>(n, 1), values::<T>(n, 2), values::<T>(n, 3));
                let (pw, wc) = (values::<T>(classes, 4), values::<T>(classes, 5));
                let labels: Vec<i64> = (0..rows).map(|r| ((r * 7 + 3) % classes) as i64).collect();
                // Row r lists r % 4 classes, then -1, then entries that are ignored.
                let targets: Vec<i64> = (0..n)
                    .map(|i| {
                        let (r, j) = (i / classes, i % classes);
                        match j.cmp(&(r % 4)) {
                            std::cmp::Ordering::Less => ((r * 5 + j * 3) % classes) as i64,
                            std::cmp::Ordering::Equal => -1,
                            std::cmp::Ordering::Greater => ((r + j) % classes) as i64,
                        }
                    })
                    .collect();
                let signs: Vec<T> = (0..rows).map(|r| T::of([1.0, -1.0, 0.0][r % 3])).collect();
                let (mut out, mut rows_out) = (vec![T::of(0.0); n], vec![T::of(0.0); rows]);
                let (mut out2, mut out3) = (vec![T::of(0.0); n], vec![T::of(0.0); n]);
                let want = per_class_forms(
                    &x,
                    &t,
                    &w,
                    &pw,
                    &wc,
                    &labels,
                    &targets,
                    &signs,
                    classes,
                    &mut out,
                    &mut out2,
                    &mut out3,
                    &mut rows_out,
                );
                for at_end in [true, false] {
                    let [rx, rt, rw, rpw, rwc, rout, rrows] = &mut regions[..] else {
                        unreachable!()
                    };
                    let got = per_class_forms(
                        rx.place(&x, at_end),
                        rt.place(&t, at_end),
                        rw.place(&w, at_end),
                        rpw.place(&pw, at_end),
                        rwc.place(&wc, at_end),
                        label_region.place(&labels, at_end),
                        target_region.place(&targets, at_end),
                        sign_region.place(&signs, at_end),
                        classes,
                        rout.place(&vec![T::of(-7.0); n], at_end),
                        out2_region.place(&vec![T::of(-7.0); n], at_end),
                        out3_region.place(&vec![T::of(-7.0); n], at_end),
                        rrows.place(&vec![T::of(-7.0); rows], at_end),
                    );
                    assert!(
                        got == want,
                        "[{rows}, {classes}] at_end={at_end} on {tier}: results differ from heap slices"
                    );
                }
            }
        })
        .unwrap();
    }
}

#[test]
fn per_class_kernels_stay_inside_f32_slices() {
    per_class_at_guards::<f32>();
}

#[test]
fn per_class_kernels_stay_inside_f64_slices() {
    per_class_at_guards::<f64>();
}
