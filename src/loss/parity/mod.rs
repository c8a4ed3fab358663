//! PyTorch's other elementwise losses (issue 16, item 1), each a [`Map2`](crate::engine::Map2)
//! on the flat driver with its scalar twin in [`crate::reference`]: `log_cosh` (Keras),
//! `hinge_embedding` and `soft_margin` (±1 targets), `poisson_nll`, `kl_div` and
//! `sigmoid_focal` (torchvision); and on three inputs, each a [`Map3`](crate::engine::Map3):
//! `gaussian_nll` (input, target, var) and `margin_ranking` (x1, x2, y); and row-wise, a
//! [`RowSpec`](crate::engine::RowSpec) on the row driver: `multilabel_soft_margin`,
//! `multi_margin`, `multilabel_margin`, `cosine_embedding` and `triplet_margin`. One
//! file per loss or family.

pub(crate) mod cosine;
pub(crate) mod focal;
pub(crate) mod gaussian;
pub(crate) mod kl_div;
pub(crate) mod log_cosh;
pub(crate) mod margin;
pub(crate) mod multi_margin;
pub(crate) mod multilabel;
pub(crate) mod multilabel_margin;
pub(crate) mod poisson;
pub(crate) mod ranking;
pub(crate) mod triplet;
