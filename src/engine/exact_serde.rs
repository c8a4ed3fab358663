//! The serde form of [`ExactSum`] (feature `serde`): the exact total, so that a partial result
//! crosses processes and machines and still merges to the same bits.
//!
//! The form is a struct of five fields, stable across versions of this crate:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `negative` | bool | the finite total's sign |
//! | `exponent` | i32 | the weight of the first digit: `2^exponent`, a multiple of 32 minus 1074 |
//! | `digits` | \[u32\] | base-2^32 digits of the magnitude, least significant first |
//! | `nan` | bool | a NaN was added (or both infinities were) |
//! | `infinities` | \[bool; 2\] | `+inf`, `-inf` were added |
//!
//! The finite total is `± Σ digits[j] · 2^(exponent + 32·j)`, exactly. Zero is `digits: []`.
//! Deserializing checks the exponent and that the magnitude is below `2^1102` (what the
//! accumulator holds), and rejects anything else with an error, never a panic.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::exact::{ExactSum, DIGITS};

/// The exponent of digit 0: every finite f64 is a multiple of `2^-1074`.
const BASE_EXPONENT: i32 = -1074;

#[derive(Serialize, Deserialize)]
#[serde(rename = "ExactSum", deny_unknown_fields)]
struct Form {
    negative: bool,
    exponent: i32,
    digits: Vec<u32>,
    nan: bool,
    infinities: [bool; 2],
}

impl Serialize for ExactSum {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (negative, low, digits) = self.to_parts();
        let [nan, pos_inf, neg_inf] = self.flags();
        Form {
            negative,
            // low < DIGITS = 68, so this is at most -1074 + 32 * 67.
            exponent: BASE_EXPONENT + 32 * low as i32,
            digits,
            nan,
            infinities: [pos_inf, neg_inf],
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ExactSum {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let form = Form::deserialize(deserializer)?;
        let offset = i64::from(form.exponent) - i64::from(BASE_EXPONENT);
        if offset < 0 || offset % 32 != 0 {
            return Err(D::Error::custom(format_args!(
                "ExactSum exponent {} is not -1074 plus a non-negative multiple of 32",
                form.exponent
            )));
        }
        let low = (offset / 32) as usize;
        let [pos_inf, neg_inf] = form.infinities;
        ExactSum::from_parts(
            form.negative,
            low,
            &form.digits,
            [form.nan, pos_inf, neg_inf],
        )
        .ok_or_else(|| {
            D::Error::custom(format_args!(
                "ExactSum digits reach beyond the accumulator ({} digits from exponent {}; at \
                 most {DIGITS} from -1074, the last below 2^31)",
                form.digits.len(),
                form.exponent
            ))
        })
    }
}
