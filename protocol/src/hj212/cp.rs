//! The CP command parameters between `&&` and `&&`: `DataTime`, parameters such as `QnRtn`, and
//! per-factor values `code-Rtd/Min/Avg/Max/Flag`.

use super::codes::{Factor, Field};
use super::error::{quote, Hj212Error};
use super::num::Num;
use super::time::DataTime;
use crate::payload::Flag;

/// CP keys that are not factor values and are kept as text, in order.
pub const PARAMS: [&str; 11] = [
    "QnRtn",
    "ExeRtn",
    "RtdInterval",
    "MinInterval",
    "SystemTime",
    "RestartTime",
    "BeginTime",
    "EndTime",
    "OverTime",
    "ReCount",
    "NewPW",
];

/// The values of one factor in a CP.
#[derive(Debug, Clone, PartialEq)]
pub struct FactorData {
    pub factor: Factor,
    pub rtd: Option<Num>,
    pub min: Option<Num>,
    pub avg: Option<Num>,
    pub max: Option<Num>,
    pub flag: Option<Flag>,
}

impl FactorData {
    pub fn new(factor: Factor) -> Self {
        FactorData {
            factor,
            rtd: None,
            min: None,
            avg: None,
            max: None,
            flag: None,
        }
    }

    /// The numeric value of `field` (`None` for `Field::Flag`).
    pub fn value(&self, field: Field) -> Option<&Num> {
        match field {
            Field::Rtd => self.rtd.as_ref(),
            Field::Min => self.min.as_ref(),
            Field::Avg => self.avg.as_ref(),
            Field::Max => self.max.as_ref(),
            Field::Flag => None,
        }
    }

    fn slot(&mut self, field: Field) -> Option<&mut Option<Num>> {
        match field {
            Field::Rtd => Some(&mut self.rtd),
            Field::Min => Some(&mut self.min),
            Field::Avg => Some(&mut self.avg),
            Field::Max => Some(&mut self.max),
            Field::Flag => None,
        }
    }

    /// Take the fields of `other` (same factor); a field set in both is a duplicate.
    pub(crate) fn merge(&mut self, other: FactorData) -> Result<(), Hj212Error> {
        let duplicate = |field: Field| Hj212Error::DuplicateField {
            field: format!("{}-{}", other.factor.code(), field.suffix()),
        };
        for field in [Field::Rtd, Field::Min, Field::Avg, Field::Max] {
            if let (Some(slot), Some(v)) = (self.slot(field), other.value(field)) {
                if slot.is_some() {
                    return Err(duplicate(field));
                }
                *slot = Some(v.clone());
            }
        }
        if let Some(flag) = other.flag {
            if self.flag.is_some() {
                return Err(duplicate(Field::Flag));
            }
            self.flag = Some(flag);
        }
        Ok(())
    }

    /// `a34004-Rtd=245.0,a34004-Flag=N` (fields in the order Rtd, Min, Avg, Max, Flag).
    pub fn encode(&self) -> String {
        let code = self.factor.code();
        let mut parts = Vec::with_capacity(5);
        for field in Field::ALL {
            if let Some(v) = self.value(field) {
                parts.push(format!("{code}-{}={v}", field.suffix()));
            }
        }
        if let Some(flag) = self.flag {
            parts.push(format!("{code}-Flag={}", flag.letter()));
        }
        parts.join(",")
    }
}

/// Why a CP item was kept as text instead of read into a [`FactorData`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnreadWhy {
    /// A factor code dustwatch does not know (`a21004-Avg`): gases, vendor extras.
    UnknownFactor,
    /// A key that is no `code-Rtd/Min/Avg/Max/Flag` (`a34004-Cou`, `Foo`).
    UnknownField,
    /// A value that is no decimal number (`a34004-Rtd=--`).
    NonNumeric,
    /// A flag that is not one of N F M S D C T B.
    BadFlag,
}

impl UnreadWhy {
    /// Counter label.
    pub fn label(self) -> &'static str {
        match self {
            UnreadWhy::UnknownFactor => "unknown_factor",
            UnreadWhy::UnknownField => "unknown_field",
            UnreadWhy::NonNumeric => "non_numeric",
            UnreadWhy::BadFlag => "bad_flag",
        }
    }
}

/// A CP item that could not be read: one field's problem never costs the frame, so it is kept
/// as written (and re-encoded as written) with the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Unread {
    pub key: String,
    pub value: String,
    pub why: UnreadWhy,
}

impl Unread {
    /// The factor code part of the key (`a21004` of `a21004-Avg`; the whole key without a `-`).
    pub fn code(&self) -> &str {
        self.key.split_once('-').map_or(&self.key, |(c, _)| c)
    }
}

/// The CP of a data segment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cp {
    pub data_time: Option<DataTime>,
    /// Non-factor items (`QnRtn=1`, `RtdInterval=30`), in order.
    pub params: Vec<(String, String)>,
    /// Factor values, in order of first appearance.
    pub factors: Vec<FactorData>,
    /// Vendor keys that were read through an alias (`PM25-Rtd` as `a34004-Rtd`, `LA-Rtd-Rtd` as
    /// `LA-Rtd`), for logging. Not encoded: re-encoding writes the standard keys.
    pub mapped_keys: Vec<String>,
    /// Items that could not be read (unknown factor or field, bad value or flag), in order.
    pub unread: Vec<Unread>,
}

/// One `;`-separated group of a CP, the unit packets are split at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Group {
    Param(String, String),
    Factor(FactorData),
    Unread(Unread),
}

impl Group {
    pub(crate) fn encode(&self) -> String {
        match self {
            Group::Param(k, v) => format!("{k}={v}"),
            Group::Factor(f) => f.encode(),
            Group::Unread(u) => format!("{}={}", u.key, u.value),
        }
    }
}

impl Cp {
    /// Values of `factor`, if the CP carries any.
    pub fn factor(&self, factor: Factor) -> Option<&FactorData> {
        self.factors.iter().find(|f| f.factor == factor)
    }

    /// Text of parameter `key` (`QnRtn`, `RtdInterval`...).
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Parse the text between `CP=&&` and the closing `&&`. Items are `key=value`, separated by
    /// `;` or `,`; empty items (a trailing `;`) are skipped.
    pub fn parse(content: &str) -> Result<Cp, Hj212Error> {
        let mut cp = Cp::default();
        for item in content.split([';', ',']).filter(|i| !i.is_empty()) {
            let Some((key, value)) = item.split_once('=') else {
                return Err(Hj212Error::Malformed {
                    detail: format!("CP item `{}` has no `=`", quote(item.as_bytes())),
                });
            };
            cp.add(key, value)?;
        }
        Ok(cp)
    }

    fn add(&mut self, key: &str, value: &str) -> Result<(), Hj212Error> {
        if key == "DataTime" {
            if self.data_time.is_some() {
                return Err(Hj212Error::DuplicateField {
                    field: "DataTime".into(),
                });
            }
            let t = DataTime::parse(value).ok_or_else(|| Hj212Error::BadDataTime {
                value: quote(value.as_bytes()),
            })?;
            self.data_time = Some(t);
            return Ok(());
        }
        if PARAMS.contains(&key) {
            if self.param(key).is_some() {
                return Err(Hj212Error::DuplicateField { field: key.into() });
            }
            self.params.push((key.to_owned(), value.to_owned()));
            return Ok(());
        }
        let unread = |why| Unread {
            key: key.to_owned(),
            value: value.to_owned(),
            why,
        };
        let Some((code, suffix)) = key.split_once('-') else {
            self.unread.push(unread(UnreadWhy::UnknownField));
            return Ok(());
        };
        let mut mapped = false;
        let factor = match Factor::from_code(code) {
            Some(f) => f,
            None => {
                mapped = true;
                let Some(f) = Factor::from_alias(code) else {
                    self.unread.push(unread(UnreadWhy::UnknownFactor));
                    return Ok(());
                };
                f
            }
        };
        // `LA-Rtd-Rtd`: a suffix written twice is read once; anything else with a second `-` is
        // an unknown field.
        let suffix = match suffix.split_once('-') {
            Some((a, b)) if a == b => {
                mapped = true;
                a
            }
            _ => suffix,
        };
        let Some(field) = Field::from_suffix(suffix) else {
            self.unread.push(unread(UnreadWhy::UnknownField));
            return Ok(());
        };
        let mut one = FactorData::new(factor);
        if field == Field::Flag {
            let mut chars = value.chars();
            let flag = match (chars.next(), chars.next()) {
                (Some(c), None) => Flag::from_letter(c),
                _ => None,
            };
            let Some(flag) = flag else {
                self.unread.push(unread(UnreadWhy::BadFlag));
                return Ok(());
            };
            one.flag = Some(flag);
        } else {
            let Some(num) = Num::parse(value) else {
                self.unread.push(unread(UnreadWhy::NonNumeric));
                return Ok(());
            };
            if let Some(slot) = one.slot(field) {
                *slot = Some(num);
            }
        }
        if mapped {
            self.mapped_keys.push(key.to_owned());
        }
        match self.factors.iter_mut().find(|f| f.factor == factor) {
            Some(existing) => existing.merge(one),
            None => {
                self.factors.push(one);
                Ok(())
            }
        }
    }

    /// Check that parameters can be written without breaking the CP syntax.
    pub(crate) fn check(&self) -> Result<(), Hj212Error> {
        let unread = self.unread.iter().map(|u| (&u.key, &u.value));
        for (k, v) in self.params.iter().map(|(k, v)| (k, v)).chain(unread) {
            let clean = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_graphic() && !b";,=&".contains(&b))
            };
            if !clean(k) || !(v.is_empty() || clean(v)) {
                return Err(Hj212Error::Malformed {
                    detail: format!(
                        "CP parameter `{}={}` contains a separator (; , = &) or a non-printable byte",
                        quote(k.as_bytes()),
                        quote(v.as_bytes())
                    ),
                });
            }
        }
        Ok(())
    }

    /// The `;`-separated groups after `DataTime`, in encoding order.
    pub(crate) fn groups(&self) -> Vec<Group> {
        let params = self
            .params
            .iter()
            .map(|(k, v)| Group::Param(k.clone(), v.clone()));
        let factors = self.factors.iter().cloned().map(Group::Factor);
        let unread = self.unread.iter().cloned().map(Group::Unread);
        params.chain(factors).chain(unread).collect()
    }

    /// A CP of `data_time` and `groups`.
    pub(crate) fn from_groups(data_time: Option<DataTime>, groups: Vec<Group>) -> Cp {
        let mut cp = Cp {
            data_time,
            ..Cp::default()
        };
        for g in groups {
            match g {
                Group::Param(k, v) => cp.params.push((k, v)),
                Group::Factor(f) => cp.factors.push(f),
                Group::Unread(u) => cp.unread.push(u),
            }
        }
        cp
    }

    /// The text between the `&&`s: `DataTime=...;params;factor groups`.
    pub fn encode(&self) -> String {
        let mut parts: Vec<String> =
            Vec::with_capacity(1 + self.params.len() + self.factors.len() + self.unread.len());
        if let Some(t) = self.data_time {
            parts.push(format!("DataTime={t}"));
        }
        parts.extend(self.groups().iter().map(Group::encode));
        parts.join(";")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_groups_and_keeps_order() {
        let cp = Cp::parse(
            "DataTime=20170102150000;a34002-Rtd=312.0,a34002-Flag=N;a34004-Avg=1,a34004-Flag=D",
        )
        .unwrap();
        assert_eq!(cp.data_time, DataTime::parse("20170102150000"));
        assert_eq!(cp.factors.len(), 2);
        assert_eq!(cp.factors[0].factor, Factor::Pm10);
        let pm25 = cp.factor(Factor::Pm25).unwrap();
        assert_eq!(pm25.avg.as_ref().map(Num::value), Some(1.0));
        assert_eq!(pm25.flag, Some(Flag::D));
        assert!(cp.mapped_keys.is_empty());
    }

    #[test]
    fn vendor_aliases_map_to_standard_codes() {
        let cp = Cp::parse("PM25-Rtd=35;PM10-Rtd=60;TSP-Rtd=90;LA-Rtd-Rtd=55.5;").unwrap();
        assert_eq!(
            cp.factor(Factor::Pm25)
                .unwrap()
                .rtd
                .as_ref()
                .unwrap()
                .value(),
            35.0
        );
        assert_eq!(
            cp.factor(Factor::Pm10)
                .unwrap()
                .rtd
                .as_ref()
                .unwrap()
                .value(),
            60.0
        );
        assert_eq!(
            cp.factor(Factor::Tsp)
                .unwrap()
                .rtd
                .as_ref()
                .unwrap()
                .value(),
            90.0
        );
        assert_eq!(
            cp.factor(Factor::Noise)
                .unwrap()
                .rtd
                .as_ref()
                .unwrap()
                .value(),
            55.5
        );
        assert_eq!(
            cp.mapped_keys,
            ["PM25-Rtd", "PM10-Rtd", "TSP-Rtd", "LA-Rtd-Rtd"]
        );
        assert_eq!(
            cp.encode(),
            "a34004-Rtd=35;a34002-Rtd=60;a34001-Rtd=90;LA-Rtd=55.5"
        );
    }

    #[test]
    fn unreadable_items_are_kept_with_their_reason() {
        for (item, why) in [
            ("a99999-Rtd=1", "unknown_factor"),
            ("a21999-Avg=12.5", "unknown_factor"),
            ("a34004-Cou=1", "unknown_field"),
            ("LA-Rtd-Avg=1", "unknown_field"),
            ("Foo=1", "unknown_field"),
            ("a34004-Rtd=abc", "non_numeric"),
            ("a34004-Rtd=", "non_numeric"),
            ("a34004-Flag=X", "bad_flag"),
            ("a34004-Flag=NN", "bad_flag"),
        ] {
            let cp = Cp::parse(&format!("a34002-Rtd=60;{item}")).unwrap();
            assert_eq!(cp.factors.len(), 1, "{item}");
            assert_eq!(cp.unread.len(), 1, "{item}");
            assert_eq!(cp.unread[0].why.label(), why, "{item}");
            assert_eq!(cp.encode(), format!("a34002-Rtd=60;{item}"));
        }
        assert_eq!(
            Cp::parse("a21999-Avg=1").unwrap().unread[0].code(),
            "a21999"
        );
    }

    #[test]
    fn rejects_with_a_reason() {
        let label = |s: &str| Cp::parse(s).unwrap_err().label();
        assert_eq!(label("DataTime=20171301000000"), "bad_datatime");
        assert_eq!(label("a34004-Rtd=1;a34004-Rtd=2"), "duplicate_field");
        assert_eq!(label("PM25-Rtd=1;a34004-Rtd=2"), "duplicate_field");
        assert_eq!(
            label("DataTime=20170101000000;DataTime=20170101000000"),
            "duplicate_field"
        );
        assert_eq!(label("QnRtn=1;QnRtn=1"), "duplicate_field");
        assert_eq!(label("a34004"), "malformed");
    }

    #[test]
    fn params_are_kept_as_text() {
        let cp = Cp::parse("QnRtn=1").unwrap();
        assert_eq!(cp.param("QnRtn"), Some("1"));
        assert_eq!(cp.encode(), "QnRtn=1");
        let bad = Cp {
            params: vec![("RtdInterval".into(), "3;0".into())],
            ..Cp::default()
        };
        assert_eq!(bad.check().unwrap_err().label(), "malformed");
    }
}
