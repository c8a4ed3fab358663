//! Vector `exp`, `ln` and `log1p`, written once over [`Lanes`](super::Lanes).
