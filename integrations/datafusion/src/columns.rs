//! Arrow columns as the slices losskit's kernels take: the float values of a column (or of a
//! list column's rows) read in place, and the runs of rows an aggregate counts.

use std::ops::Range;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeListArray, GenericListArray, OffsetSizeTrait,
};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer};
use datafusion::arrow::datatypes::{DataType, Float16Type, Float32Type, Float64Type};
use datafusion::error::{DataFusionError, Result};

/// The float values of an array, in place.
#[derive(Clone, Copy)]
pub(crate) enum Floats<'a> {
    F16(&'a [losskit::f16]),
    F32(&'a [f32]),
    F64(&'a [f64]),
}

impl<'a> Floats<'a> {
    /// The values of a `Float16`, `Float32` or `Float64` array (nulls not looked at), or an
    /// error naming `what`.
    pub(crate) fn of(array: &'a dyn Array, what: &str) -> Result<Floats<'a>> {
        Ok(match array.data_type() {
            DataType::Float16 => Floats::F16(array.as_primitive::<Float16Type>().values()),
            DataType::Float32 => Floats::F32(array.as_primitive::<Float32Type>().values()),
            DataType::Float64 => Floats::F64(array.as_primitive::<Float64Type>().values()),
            other => return Err(exec(format!("{what} has type {other}, not a float type"))),
        })
    }
}

/// A column of logit rows: `List`, `LargeList` or `FixedSizeList` of floats.
pub(crate) struct ListRows<'a> {
    array: &'a dyn Array,
    layout: Layout<'a>,
}

enum Layout<'a> {
    List(&'a GenericListArray<i32>),
    LargeList(&'a GenericListArray<i64>),
    Fixed(&'a FixedSizeListArray),
}

impl<'a> ListRows<'a> {
    /// The rows of a list column, or an error naming `what` if it is not one.
    pub(crate) fn of(array: &'a ArrayRef, what: &str) -> Result<ListRows<'a>> {
        let layout = match array.data_type() {
            DataType::List(_) => Layout::List(array.as_list::<i32>()),
            DataType::LargeList(_) => Layout::LargeList(array.as_list::<i64>()),
            DataType::FixedSizeList(_, _) => Layout::Fixed(array.as_fixed_size_list()),
            other => {
                return Err(exec(format!(
                    "{what} has type {other}, not a list of floats"
                )))
            }
        };
        Ok(ListRows {
            array: array.as_ref(),
            layout,
        })
    }

    /// The rows' null buffer.
    pub(crate) fn nulls(&self) -> Option<&NullBuffer> {
        self.array.nulls()
    }

    /// The child array of every row's values.
    pub(crate) fn values(&self) -> &'a ArrayRef {
        match self.layout {
            Layout::List(a) => a.values(),
            Layout::LargeList(a) => a.values(),
            Layout::Fixed(a) => a.values(),
        }
    }

    /// The positions in [`values`](Self::values) of rows `rows`, which must all be `classes`
    /// long and stored one after another; an error naming `what` (and the row) otherwise.
    pub(crate) fn contiguous(
        &self,
        rows: Range<usize>,
        classes: usize,
        what: &str,
    ) -> Result<Range<usize>> {
        match self.layout {
            Layout::List(a) => list_span(a, rows, classes, what),
            Layout::LargeList(a) => list_span(a, rows, classes, what),
            Layout::Fixed(a) => {
                let len = a.value_length() as usize;
                if len != classes {
                    return Err(length_error(what, rows.start, len, classes));
                }
                let start = a.value_offset(rows.start) as usize;
                Ok(start..start + rows.len() * classes)
            }
        }
    }

    /// The length of row `row`.
    pub(crate) fn len_of(&self, row: usize) -> usize {
        match self.layout {
            Layout::List(a) => a.value_length(row) as usize,
            Layout::LargeList(a) => a.value_length(row) as usize,
            Layout::Fixed(a) => a.value_length() as usize,
        }
    }
}

fn list_span<O: OffsetSizeTrait>(
    array: &GenericListArray<O>,
    rows: Range<usize>,
    classes: usize,
    what: &str,
) -> Result<Range<usize>> {
    let offsets = &array.value_offsets()[rows.start..=rows.end];
    for (i, pair) in offsets.windows(2).enumerate() {
        let len = (pair[1] - pair[0]).as_usize();
        if len != classes {
            return Err(length_error(what, rows.start + i, len, classes));
        }
    }
    Ok(offsets[0].as_usize()..offsets[rows.len()].as_usize())
}

fn length_error(what: &str, row: usize, len: usize, classes: usize) -> DataFusionError {
    exec(format!(
        "{what}: row {row} of the batch has {len} values where the rows before it had {classes}"
    ))
}

/// The runs `(start, end)` of rows where every one of `nulls` is valid and `keep` holds.
pub(crate) fn counted_runs(
    len: usize,
    nulls: &[Option<&NullBuffer>],
    keep: Option<BooleanBuffer>,
) -> Vec<(usize, usize)> {
    let mut valid = nulls.iter().fold(None, |acc: Option<NullBuffer>, n| {
        NullBuffer::union(acc.as_ref(), *n)
    });
    if let Some(keep) = keep {
        let kept = NullBuffer::new(keep);
        valid = NullBuffer::union(valid.as_ref(), Some(&kept));
    }
    match valid {
        None if len == 0 => Vec::new(),
        None => vec![(0, len)],
        Some(valid) => valid.valid_slices().collect(),
    }
}

/// A query-time error.
pub(crate) fn exec(message: String) -> DataFusionError {
    DataFusionError::Execution(message)
}
