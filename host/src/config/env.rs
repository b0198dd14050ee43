//! `${NAME}` in the policy file: secrets come from the environment (or a secrets
//! manager that sets it), so the file itself can be shipped, reviewed and committed.

use serde_json::Value;

/// The policy JSON with every `${NAME}` (`NAME` of `A-Z`, `0-9`, `_`) inside its string
/// values replaced by `lookup(NAME)`; anything outside strings is left alone, so a value
/// can never turn into JSON of another shape. Returns the text and the values used (to
/// keep them out of error messages). Every name `lookup` does not know is reported; text
/// that is not JSON is returned as is, for the policy parser to report.
pub(super) fn expand(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(String, Vec<String>), Vec<String>> {
    let Ok(mut json) = serde_json::from_str::<Value>(text) else {
        return Ok((text.to_owned(), Vec::new()));
    };
    let (mut used, mut missing) = (Vec::new(), Vec::new());
    walk(&mut json, &mut |s: &mut String| {
        if s.contains("${") {
            *s = expand_str(s, &lookup, &mut used, &mut missing);
        }
    });
    if missing.is_empty() {
        Ok((json.to_string(), used))
    } else {
        Err(missing)
    }
}

fn walk(value: &mut Value, f: &mut impl FnMut(&mut String)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter_mut().for_each(|v| walk(v, f)),
        Value::Object(map) => map.values_mut().for_each(|v| walk(v, f)),
        _ => {}
    }
}

fn expand_str(
    text: &str,
    lookup: &impl Fn(&str) -> Option<String>,
    used: &mut Vec<String>,
    missing: &mut Vec<String>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let len = after
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..len];
        if name.is_empty() || !after[len..].starts_with('}') {
            out.push_str("${");
            rest = after;
            continue;
        }
        match lookup(name) {
            Some(value) => {
                out.push_str(&value);
                used.push(value);
            }
            None => missing.push(format!("policy_file: ${{{name}}} is not set in the environment")),
        }
        rest = &after[len + 1..];
    }
    out.push_str(rest);
    out
}

/// `message` with every value in `secrets` replaced by `[redacted]`.
pub(super) fn redact(message: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(message.to_owned(), |m, s| m.replace(s.as_str(), "[redacted]"))
}

#[cfg(test)]
mod tests {
    use super::{expand, redact};

    fn env(name: &str) -> Option<String> {
        match name {
            "SECRET" => Some("a\"b\\c".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn names_in_strings_are_replaced_and_escaped_by_the_serializer() {
        let (text, used) = expand(r#"{"s": "${SECRET}", "e": "x${EMPTY}y"}"#, env).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!((v["s"].as_str(), v["e"].as_str()), (Some("a\"b\\c"), Some("xy")));
        assert_eq!(used.len(), 2);
    }

    #[test]
    fn what_is_not_a_placeholder_in_a_string_is_left_alone() {
        let text = r#"{"p":"^[a-z]{1,64}$","q":"${lower}","r":"$5","s":"${UNCLOSED"}"#;
        let (out, _) = expand(text, env).unwrap();
        assert_eq!(out, text);
    }

    #[test]
    fn every_missing_name_is_reported() {
        let err = expand(r#"["${A}", "${SECRET}", {"k": "${B}"}]"#, env).unwrap_err();
        assert_eq!(err.len(), 2);
        assert!(err[0].contains("${A}") && err[1].contains("${B}"), "{err:?}");
    }

    #[test]
    fn used_values_are_kept_out_of_messages() {
        let secrets = vec!["hunter2-secret".to_owned(), String::new()];
        assert_eq!(
            redact("invalid type: string \"hunter2-secret\"", &secrets),
            "invalid type: string \"[redacted]\""
        );
    }
}
