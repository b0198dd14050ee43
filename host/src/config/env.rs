//! `${NAME}` in the policy file: secrets come from the environment (or a secrets
//! manager that sets it), so the file itself can be shipped, reviewed and committed.

/// Replaces every `${NAME}` (`NAME` of `A-Z`, `0-9`, `_`) in `text` with `lookup(NAME)`,
/// escaped for a JSON string (the placeholders stand inside JSON strings). Every name
/// `lookup` does not know is reported; nothing else in the text is touched.
pub(super) fn expand(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        if name.is_empty() || !after[name_len..].starts_with('}') {
            out.push_str("${");
            rest = after;
            continue;
        }
        match lookup(name) {
            Some(value) => {
                let quoted = serde_json::to_string(&value).expect("a string serializes");
                out.push_str(&quoted[1..quoted.len() - 1]);
            }
            None => missing.push(format!("policy_file: ${{{name}}} is not set in the environment")),
        }
        rest = &after[name_len + 1..];
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::expand;

    fn env(name: &str) -> Option<String> {
        match name {
            "SECRET" => Some("a\"b\\c".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn names_are_replaced_with_json_escaped_values() {
        assert_eq!(
            expand(r#"{"s": "${SECRET}", "e": "${EMPTY}"}"#, env).unwrap(),
            r#"{"s": "a\"b\\c", "e": ""}"#
        );
    }

    #[test]
    fn what_is_not_a_placeholder_is_left_alone() {
        let text = r#"{"p": "^[a-z]{1,64}$", "q": "${lower}", "r": "$5", "s": "${UNCLOSED"}"#;
        assert_eq!(expand(text, env).unwrap(), text);
    }

    #[test]
    fn every_missing_name_is_reported() {
        let err = expand("${A} ${SECRET} ${B}", env).unwrap_err();
        assert_eq!(err.len(), 2);
        assert!(err[0].contains("${A}") && err[1].contains("${B}"), "{err:?}");
    }
}
