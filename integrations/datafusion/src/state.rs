//! The accumulators' state: a losskit partial result in its serde form (JSON), one `Binary`
//! value per partition and group, so that DataFusion (and Ballista, between executors) ships
//! and merges it exactly.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::error::Result;
use datafusion::scalar::ScalarValue;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::columns::exec;

/// `value` as a state scalar.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<ScalarValue> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| exec(format!("cannot encode a losskit partial result: {e}")))?;
    Ok(ScalarValue::Binary(Some(bytes)))
}

/// Every non-null state value of `states` (a `Binary` column), decoded, in row order.
pub(crate) fn decode_each<T: DeserializeOwned>(
    states: &ArrayRef,
    mut each: impl FnMut(T) -> Result<()>,
) -> Result<()> {
    let binary = states.as_binary_opt::<i32>().ok_or_else(|| {
        exec(format!(
            "a losskit state column has type {}",
            states.data_type()
        ))
    })?;
    for bytes in binary.iter().flatten() {
        let value = serde_json::from_slice(bytes)
            .map_err(|e| exec(format!("a losskit partial result does not decode: {e}")))?;
        each(value)?;
    }
    Ok(())
}
