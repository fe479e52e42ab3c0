//! Variable values as Ansible loads them: YAML read into an owned, shareable tree, plain scalars
//! typed the YAML 1.1 way PyYAML types them (`1.10` is the float 1.1, `yes` is true), since
//! that is the text a template sees when it prints them.

use std::sync::Arc;

use discover::YamlNode;

/// A loaded value. Strings are templates, evaluated when read.
#[derive(Debug, Clone)]
pub(crate) enum Var {
    Str(Arc<str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    None,
    Map(Arc<[(String, Var)]>),
    Seq(Arc<[Var]>),
}

impl Var {
    pub fn from_node(node: &YamlNode) -> Var {
        match node {
            YamlNode::Scalar(s) if s.is_plain() => plain(&s.value),
            YamlNode::Scalar(s) => Var::Str(Arc::from(&*s.value)),
            YamlNode::Map(_) => Var::Map(
                node.entries()
                    .map(|(k, v)| (k.to_string(), Var::from_node(v)))
                    .collect(),
            ),
            YamlNode::Seq(items) => Var::Seq(items.iter().map(Var::from_node).collect()),
        }
    }

    /// The template text of a string, or how a scalar prints (Python's `str()`).
    pub fn text(&self) -> Option<String> {
        Some(match self {
            Var::Str(s) => s.to_string(),
            Var::Int(i) => i.to_string(),
            Var::Float(f) => python_float(*f),
            Var::Bool(true) => "True".to_string(),
            Var::Bool(false) => "False".to_string(),
            Var::None | Var::Map(_) | Var::Seq(_) => return None,
        })
    }
}

/// PyYAML's resolver for plain scalars (YAML 1.1 core types).
fn plain(text: &str) -> Var {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Var::None,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Var::Bool(true);
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Var::Bool(false);
        }
        _ => {}
    }
    let digits = text.replace('_', "");
    let unsigned = digits.trim_start_matches(['+', '-']);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        // A leading 0 is octal in YAML 1.1; rare in image tags, read as text rather than guessed.
        if (unsigned == "0" || !unsigned.starts_with('0'))
            && let Ok(i) = digits.parse()
        {
            return Var::Int(i);
        }
        return Var::Str(Arc::from(text));
    }
    // PyYAML's float: digits with one dot (and an optional exponent); `1.2.3` is a string.
    let is_float = {
        let (mantissa, exp) = match unsigned.find(['e', 'E']) {
            Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
            None => (unsigned, None),
        };
        let dot_ok = mantissa.matches('.').count() == 1
            && mantissa.len() > 1
            && mantissa.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        let exp_ok = exp.is_none_or(|e| {
            let e = e.trim_start_matches(['+', '-']);
            !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
        });
        dot_ok && exp_ok
    };
    if is_float && let Ok(f) = digits.parse() {
        return Var::Float(f);
    }
    Var::Str(Arc::from(text))
}

/// `str(float)` as Python prints it for the values tags hold (`19.03`, `1.0`, `1.1`).
fn python_float(f: f64) -> String {
    // Rust's `{:?}` is the shortest round-trip form with a `.0` for whole numbers, as `repr`.
    format!("{f:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_print_as_python_prints_what_pyyaml_loaded() {
        for (written, printed) in [
            ("1.0", "1.0"),
            ("1.10", "1.1"),
            ("19.03", "19.03"),
            ("3.14", "3.14"),
            ("42", "42"),
            ("yes", "True"),
            ("v1.2.3", "v1.2.3"),
            ("1.2.3", "1.2.3"),
            ("0755", "0755"),
            ("latest", "latest"),
        ] {
            assert_eq!(plain(written).text().as_deref(), Some(printed), "{written}");
        }
        assert!(matches!(plain("~"), Var::None));
    }
}
