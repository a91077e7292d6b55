//! The `Prefer` request header: the preferences we honour.

/// The preferences a request asked for that this service understands.
///
/// Unknown preferences and invalid values are ignored, as RFC 7240 requires and
/// Graph does; the caller decides which ones it honoured and reports them in
/// `Preference-Applied`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Preferences {
    /// `odata.maxpagesize={n}` with n ≥ 1, not yet clamped to the collection
    /// maximum. Values beyond `u32` saturate, since they clamp anyway.
    pub(crate) max_page_size: Option<u32>,
    /// `include-unknown-enum-members`.
    pub(crate) include_unknown_enum_members: bool,
    /// `omit-values=nulls`.
    pub(crate) omit_nulls: bool,
}

/// Reads every `Prefer` header value of a request.
///
/// Preferences may share a header, comma-separated, or come in several
/// headers. Names and the `nulls` value match case-insensitively; blanks and
/// a quoted value (`odata.maxpagesize="10"`) are tolerated; parameters after
/// `;` are ignored. `maxpagesize` without the `odata.` prefix is accepted, as
/// OData 4.01 allows. As RFC 7240 says, only the first instance of a
/// preference counts, even when its value is invalid.
pub(crate) fn parse_prefer<'a>(values: impl Iterator<Item = &'a str>) -> Preferences {
    let mut res = Preferences::default();
    let mut seen_page_size = false;
    let mut seen_omit = false;
    for preference in values.flat_map(split_outside_quotes) {
        // Preference parameters (`; param`) carry nothing we use.
        let head = preference.split(';').next().unwrap_or_default();
        let (name, value) = match head.split_once('=') {
            Some((name, value)) => (name.trim(), Some(unquote(value.trim()))),
            None => (head.trim(), None),
        };
        if name.eq_ignore_ascii_case("odata.maxpagesize") || name.eq_ignore_ascii_case("maxpagesize") {
            if !seen_page_size {
                seen_page_size = true;
                res.max_page_size = value.and_then(page_size);
            }
        } else if name.eq_ignore_ascii_case("include-unknown-enum-members") {
            res.include_unknown_enum_members = true;
        } else if name.eq_ignore_ascii_case("omit-values") && !seen_omit {
            seen_omit = true;
            res.omit_nulls = value.is_some_and(|value| value.eq_ignore_ascii_case("nulls"));
        }
    }
    res
}

/// Splits one header value at commas that are not inside a quoted string.
fn split_outside_quotes(value: &str) -> Vec<&str> {
    let mut res = Vec::new();
    let mut in_quotes = false;
    let mut start = 0;
    for (index, c) in value.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => {
                res.push(&value[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    res.push(&value[start..]);
    res
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(value)
}

fn page_size(value: &str) -> Option<u32> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let trimmed = value.trim_start_matches('0');
    if trimmed.is_empty() {
        return None;
    }
    // Any digit string longer than u32 can hold saturates.
    Some(trimmed.parse::<u32>().unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{expect, Expect};

    fn check_prefer(headers: &[&str], expect: Expect) {
        let preferences = parse_prefer(headers.iter().copied());
        expect.assert_eq(&format!("{preferences:?}"));
    }

    #[test]
    fn preferences() {
        check_prefer(
            &[],
            expect!["Preferences { max_page_size: None, include_unknown_enum_members: false, omit_nulls: false }"],
        );
        check_prefer(
            &["odata.maxpagesize=10"],
            expect!["Preferences { max_page_size: Some(10), include_unknown_enum_members: false, omit_nulls: false }"],
        );
        check_prefer(
            &["odata.maxpagesize=\"10\""],
            expect!["Preferences { max_page_size: Some(10), include_unknown_enum_members: false, omit_nulls: false }"],
        );
        check_prefer(
            &["  ODATA.MaxPageSize = 25 "],
            expect!["Preferences { max_page_size: Some(25), include_unknown_enum_members: false, omit_nulls: false }"],
        );
        check_prefer(
            &["maxpagesize=5"],
            expect!["Preferences { max_page_size: Some(5), include_unknown_enum_members: false, omit_nulls: false }"],
        );
        check_prefer(
            &["odata.maxpagesize=0"],
            expect!["Preferences { max_page_size: None, include_unknown_enum_members: false, omit_nulls: false }"],
        );
        check_prefer(
            &["odata.maxpagesize=-3"],
            expect!["Preferences { max_page_size: None, include_unknown_enum_members: false, omit_nulls: false }"],
        );
        check_prefer(
            &["odata.maxpagesize=ten"],
            expect!["Preferences { max_page_size: None, include_unknown_enum_members: false, omit_nulls: false }"],
        );
        check_prefer(
            &["odata.maxpagesize"],
            expect!["Preferences { max_page_size: None, include_unknown_enum_members: false, omit_nulls: false }"],
        );
        check_prefer(&["odata.maxpagesize=99999999999999"], expect!["Preferences { max_page_size: Some(4294967295), include_unknown_enum_members: false, omit_nulls: false }"]);
        check_prefer(
            &["odata.maxpagesize=7, odata.maxpagesize=9"],
            expect!["Preferences { max_page_size: Some(7), include_unknown_enum_members: false, omit_nulls: false }"],
        );
        check_prefer(
            &["odata.maxpagesize=x", "odata.maxpagesize=9"],
            expect!["Preferences { max_page_size: None, include_unknown_enum_members: false, omit_nulls: false }"],
        );
        check_prefer(
            &["include-unknown-enum-members, omit-values=nulls", "odata.maxpagesize=3"],
            expect!["Preferences { max_page_size: Some(3), include_unknown_enum_members: true, omit_nulls: true }"],
        );
        check_prefer(
            &["Include-Unknown-Enum-Members", "OMIT-VALUES=\"NULLS\""],
            expect!["Preferences { max_page_size: None, include_unknown_enum_members: true, omit_nulls: true }"],
        );
        check_prefer(
            &["omit-values=defaults"],
            expect!["Preferences { max_page_size: None, include_unknown_enum_members: false, omit_nulls: false }"],
        );
        check_prefer(
            &["return=minimal, respond-async; wait=10, odata.maxpagesize=4;x=\"a,b\""],
            expect!["Preferences { max_page_size: Some(4), include_unknown_enum_members: false, omit_nulls: false }"],
        );
        check_prefer(
            &["foo=\"a,odata.maxpagesize=3\", odata.maxpagesize=8"],
            expect!["Preferences { max_page_size: Some(8), include_unknown_enum_members: false, omit_nulls: false }"],
        );
        check_prefer(
            &[",,,", "\"", "=;="],
            expect!["Preferences { max_page_size: None, include_unknown_enum_members: false, omit_nulls: false }"],
        );
    }
}
