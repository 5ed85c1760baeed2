//! Every enum that becomes text: its text (strum) and its JSON (serde) are the same word, and the
//! word parses back to the same variant.

use dustwatch_protocol::{
    AlertState, Change, EventKind, Flag, Level, Metric, Phase, RuleKind, Severity, SiteKind,
    StatusState,
};
use serde::{de::DeserializeOwned, Serialize};
use std::fmt::{Debug, Display};
use std::str::FromStr;
use strum::VariantArray;

fn agree<T>()
where
    T: VariantArray + Copy + PartialEq + Debug + Display + FromStr + Serialize + DeserializeOwned,
    T: Into<&'static str> + AsRef<str>,
{
    assert!(!T::VARIANTS.is_empty());
    for &v in T::VARIANTS {
        let text = v.to_string();
        let json = serde_json::to_value(v).expect("a unit variant serialises");
        assert_eq!(
            json,
            serde_json::Value::String(text.clone()),
            "{v:?}: serde vs Display"
        );
        assert_eq!(v.as_ref(), text, "{v:?}: AsRef");
        let name: &'static str = v.into();
        assert_eq!(name, text, "{v:?}: IntoStaticStr");
        assert_eq!(T::from_str(&text).ok(), Some(v), "{v:?}: text back");
        assert_eq!(
            serde_json::from_value::<T>(json).ok(),
            Some(v),
            "{v:?}: JSON back"
        );
    }
    assert!(T::from_str("no such name").is_err());
}

#[test]
fn text_and_serde_agree_for_every_enum() {
    agree::<Level>();
    agree::<Metric>();
    agree::<Flag>();
    agree::<EventKind>();
    agree::<StatusState>();
    agree::<SiteKind>();
    agree::<Phase>();
    agree::<Severity>();
    agree::<AlertState>();
    agree::<RuleKind>();
    agree::<Change>();
}

#[test]
fn names_are_the_contract_words() {
    assert_eq!(Metric::NoiseDba.name(), "noise_dba");
    assert_eq!(Metric::Pm25.to_string(), "pm25");
    assert_eq!("orange".parse::<Level>().ok(), Some(Level::Orange));
    assert_eq!(EventKind::SprinklerOn.name(), "sprinkler_on");
    assert_eq!(Severity::Critical.name(), "critical");
    assert_eq!(RuleKind::parse("restriction"), Some(RuleKind::Restriction));
    assert_eq!(Change::Acknowledged.name(), "acknowledged");
    assert_eq!(Flag::D.to_string(), "D");
    assert_eq!(Metric::ALL.len(), Metric::VARIANTS.len());
    assert_eq!(Level::ALL.as_slice(), Level::VARIANTS);
    assert_eq!(RuleKind::ALL.as_slice(), RuleKind::VARIANTS);
}
