//! The losses: each a short map over lanes, run by the driver in [`crate::reduce`], with its
//! scalar twin in [`crate::reference`].

pub(crate) mod binary;
pub(crate) mod cross_entropy;
pub(crate) mod pointwise;
