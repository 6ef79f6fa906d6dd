//! serde's `rename_all` rules, applied to field names exactly as
//! `serde_derive` applies them (its `internals/case.rs`), so the key this
//! crate records for a field is the key serde writes.

/// One `rename_all` rule. `None` leaves names as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum RenameRule {
    #[default]
    None,
    LowerCase,
    UpperCase,
    PascalCase,
    CamelCase,
    SnakeCase,
    ScreamingSnakeCase,
    KebabCase,
    ScreamingKebabCase,
}

/// The spellings serde accepts, in serde's order.
const RULES: &[(&str, RenameRule)] = &[
    ("lowercase", RenameRule::LowerCase),
    ("UPPERCASE", RenameRule::UpperCase),
    ("PascalCase", RenameRule::PascalCase),
    ("camelCase", RenameRule::CamelCase),
    ("snake_case", RenameRule::SnakeCase),
    ("SCREAMING_SNAKE_CASE", RenameRule::ScreamingSnakeCase),
    ("kebab-case", RenameRule::KebabCase),
    ("SCREAMING-KEBAB-CASE", RenameRule::ScreamingKebabCase),
];

impl RenameRule {
    /// The rule serde names `name`, if any.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        RULES
            .iter()
            .find(|(spelling, _)| *spelling == name)
            .map(|(_, rule)| *rule)
    }

    /// The key serde uses for a struct field named `field` (a Rust field
    /// name, already snake_case, `r#` removed).
    pub(crate) fn apply_to_field(self, field: &str) -> String {
        match self {
            RenameRule::None | RenameRule::LowerCase | RenameRule::SnakeCase => field.to_owned(),
            RenameRule::UpperCase | RenameRule::ScreamingSnakeCase => field.to_ascii_uppercase(),
            RenameRule::PascalCase => {
                let mut pascal = String::with_capacity(field.len());
                let mut capitalize = true;
                for ch in field.chars() {
                    if ch == '_' {
                        capitalize = true;
                    } else if capitalize {
                        pascal.push(ch.to_ascii_uppercase());
                        capitalize = false;
                    } else {
                        pascal.push(ch);
                    }
                }
                pascal
            }
            RenameRule::CamelCase => {
                // serde: `pascal[..1].to_ascii_lowercase() + &pascal[1..]`,
                // written so it cannot panic on an empty or non-ASCII start.
                let pascal = RenameRule::PascalCase.apply_to_field(field);
                let mut chars = pascal.chars();
                match chars.next() {
                    Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
                    None => pascal,
                }
            }
            RenameRule::KebabCase => field.replace('_', "-"),
            RenameRule::ScreamingKebabCase => field.to_ascii_uppercase().replace('_', "-"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RenameRule::{self, *};

    #[test]
    fn every_serde_spelling_is_recognized_and_nothing_else() {
        for (spelling, rule) in super::RULES {
            assert_eq!(RenameRule::from_name(spelling), Some(*rule));
        }
        assert!(RenameRule::from_name("camelcase").is_none());
        assert!(RenameRule::from_name("").is_none());
    }

    #[test]
    fn rename_all_on_fields_matches_serde() {
        // The table of serde_derive's own `rename_fields` test.
        for &(original, upper, pascal, camel, screaming, kebab, screaming_kebab) in &[
            (
                "outcome", "OUTCOME", "Outcome", "outcome", "OUTCOME", "outcome", "OUTCOME",
            ),
            (
                "very_tasty",
                "VERY_TASTY",
                "VeryTasty",
                "veryTasty",
                "VERY_TASTY",
                "very-tasty",
                "VERY-TASTY",
            ),
            ("a", "A", "A", "a", "A", "a", "A"),
            ("z42", "Z42", "Z42", "z42", "Z42", "z42", "Z42"),
        ] {
            assert_eq!(None.apply_to_field(original), original);
            assert_eq!(UpperCase.apply_to_field(original), upper);
            assert_eq!(PascalCase.apply_to_field(original), pascal);
            assert_eq!(CamelCase.apply_to_field(original), camel);
            assert_eq!(SnakeCase.apply_to_field(original), original);
            assert_eq!(ScreamingSnakeCase.apply_to_field(original), screaming);
            assert_eq!(KebabCase.apply_to_field(original), kebab);
            assert_eq!(ScreamingKebabCase.apply_to_field(original), screaming_kebab);
        }
    }

    #[test]
    fn field_rules_keep_serde_quirks() {
        // lowercase does not touch fields (they are snake_case already).
        assert_eq!(LowerCase.apply_to_field("last_id"), "last_id");
        assert_eq!(CamelCase.apply_to_field("last_id"), "lastId");
        // Leading and doubled underscores vanish in Pascal/camel case.
        assert_eq!(CamelCase.apply_to_field("_private__x"), "privateX");
        assert_eq!(PascalCase.apply_to_field("_private__x"), "PrivateX");
        assert_eq!(CamelCase.apply_to_field("_"), "");
        assert_eq!(KebabCase.apply_to_field("__x"), "--x");
    }
}
