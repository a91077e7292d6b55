//! Splitting the raw query string into the `$`-options, the scalar options `$top`, `$count`
//! and `$skip`, and `QueryOptions`: all of a request's options parsed against the rules of its
//! resource, before a handler sees them.

use super::error::QueryError;
use super::expand::{ensure_expand_only, parse_expand, ExpandItem};
use super::filter::{parse_call_record_filter, CallRecordFilter};
use super::select::parse_select;
use super::EntityKind;

/// A system query option this module knows by name.
///
/// Knowing a name does not mean supporting it: `$orderby`, `$search`,
/// `$format`, `$apply` and `$compute` are recognised only so that they can be
/// rejected with a precise message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum QueryOption {
    /// `$filter`
    Filter,
    /// `$select`
    Select,
    /// `$expand`
    Expand,
    /// `$top`
    Top,
    /// `$skiptoken`
    SkipToken,
    /// `$skip`
    Skip,
    /// `$count`
    Count,
    /// `$orderby`
    OrderBy,
    /// `$search`
    Search,
    /// `$format`
    Format,
    /// `$apply`
    Apply,
    /// `$compute`
    Compute,
}

impl QueryOption {
    /// Every known option, in the order errors report them.
    pub(crate) const ALL: [QueryOption; 12] = [
        QueryOption::Filter,
        QueryOption::Select,
        QueryOption::Expand,
        QueryOption::Top,
        QueryOption::SkipToken,
        QueryOption::Skip,
        QueryOption::Count,
        QueryOption::OrderBy,
        QueryOption::Search,
        QueryOption::Format,
        QueryOption::Apply,
        QueryOption::Compute,
    ];

    /// The canonical, lower-case name with its `$`.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            QueryOption::Filter => "$filter",
            QueryOption::Select => "$select",
            QueryOption::Expand => "$expand",
            QueryOption::Top => "$top",
            QueryOption::SkipToken => "$skiptoken",
            QueryOption::Skip => "$skip",
            QueryOption::Count => "$count",
            QueryOption::OrderBy => "$orderby",
            QueryOption::Search => "$search",
            QueryOption::Format => "$format",
            QueryOption::Apply => "$apply",
            QueryOption::Compute => "$compute",
        }
    }

    fn from_name(name: &str) -> Option<QueryOption> {
        QueryOption::ALL
            .into_iter()
            .find(|option| option.as_str().eq_ignore_ascii_case(name))
    }
}

/// The `$`-options of one request, each decoded exactly once and not yet parsed.
///
/// A field is `None` when the option is absent and `Some("")` when it was
/// given with an empty value; the typed parsers reject empty values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RawQueryOptions {
    /// `$filter`
    pub(crate) filter: Option<String>,
    /// `$select`
    pub(crate) select: Option<String>,
    /// `$expand`
    pub(crate) expand: Option<String>,
    /// `$top`
    pub(crate) top: Option<String>,
    /// `$skiptoken`
    pub(crate) skiptoken: Option<String>,
    /// `$skip`
    pub(crate) skip: Option<String>,
    /// `$count`
    pub(crate) count: Option<String>,
    /// `$orderby`
    pub(crate) orderby: Option<String>,
    /// `$search`
    pub(crate) search: Option<String>,
    /// `$format`
    pub(crate) format: Option<String>,
    /// `$apply`
    pub(crate) apply: Option<String>,
    /// `$compute`
    pub(crate) compute: Option<String>,
}

impl RawQueryOptions {
    /// The raw value of one option, if it was given.
    pub(crate) fn get(&self, option: QueryOption) -> Option<&str> {
        self.slot(option).as_deref()
    }

    /// The options that were given, in [`QueryOption::ALL`] order.
    pub(crate) fn present(&self) -> impl Iterator<Item = QueryOption> + '_ {
        QueryOption::ALL
            .into_iter()
            .filter(|option| self.get(*option).is_some())
    }

    /// Checks that every option given is one the resource supports.
    ///
    /// The error names the first unsupported option present, in
    /// [`QueryOption::ALL`] order, so the answer is deterministic.
    pub(crate) fn ensure_only(&self, supported: &[QueryOption]) -> Result<(), QueryError> {
        match self.present().find(|option| !supported.contains(option)) {
            None => Ok(()),
            Some(option) => Err(QueryError::new(
                option.as_str(),
                format!("Query option '{}' is not supported on this resource.", option.as_str()),
            )),
        }
    }

    fn slot(&self, option: QueryOption) -> &Option<String> {
        match option {
            QueryOption::Filter => &self.filter,
            QueryOption::Select => &self.select,
            QueryOption::Expand => &self.expand,
            QueryOption::Top => &self.top,
            QueryOption::SkipToken => &self.skiptoken,
            QueryOption::Skip => &self.skip,
            QueryOption::Count => &self.count,
            QueryOption::OrderBy => &self.orderby,
            QueryOption::Search => &self.search,
            QueryOption::Format => &self.format,
            QueryOption::Apply => &self.apply,
            QueryOption::Compute => &self.compute,
        }
    }

    fn slot_mut(&mut self, option: QueryOption) -> &mut Option<String> {
        match option {
            QueryOption::Filter => &mut self.filter,
            QueryOption::Select => &mut self.select,
            QueryOption::Expand => &mut self.expand,
            QueryOption::Top => &mut self.top,
            QueryOption::SkipToken => &mut self.skiptoken,
            QueryOption::Skip => &mut self.skip,
            QueryOption::Count => &mut self.count,
            QueryOption::OrderBy => &mut self.orderby,
            QueryOption::Search => &mut self.search,
            QueryOption::Format => &mut self.format,
            QueryOption::Apply => &mut self.apply,
            QueryOption::Compute => &mut self.compute,
        }
    }
}

/// Splits a URL query string (without the `?`) into its `$`-options.
///
/// Names and values are decoded exactly once with form-urlencoded rules, so
/// `%24select` is `$select` and `+` is a space. Names are matched
/// case-insensitively. Parameters that do not start with `$` are ignored.
/// Errors: a known option given twice, or an unknown name starting with `$`.
/// Values are not checked here; see the per-option parsers.
pub(crate) fn parse_query_string(raw: &str) -> Result<RawQueryOptions, QueryError> {
    let mut res = RawQueryOptions::default();
    for (name, value) in form_urlencoded::parse(raw.as_bytes()) {
        if !name.starts_with('$') {
            continue;
        }
        let Some(option) = QueryOption::from_name(&name) else {
            return Err(QueryError::new(
                "query",
                format!(
                    "Query option '{name}' is not allowed. \
                     Supported query options are $filter, $select, $expand, $top, $skiptoken, $skip and $count."
                ),
            ));
        };
        let slot = res.slot_mut(option);
        if slot.is_some() {
            return Err(QueryError::new(
                option.as_str(),
                format!(
                    "Query option '{}' was specified more than once, but it must be specified at most once.",
                    option.as_str()
                ),
            ));
        }
        *slot = Some(value.into_owned());
    }
    Ok(res)
}

/// What one resource accepts: the options it supports, the entity whose properties its `$select`
/// and `$expand` name, and the navigation properties it may expand.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OptionRules {
    pub(crate) supported: &'static [QueryOption],
    /// `None` for a resource that takes neither `$select` nor `$expand`.
    pub(crate) entity: Option<EntityKind>,
    pub(crate) expandable: &'static [&'static str],
}

impl OptionRules {
    /// A resource that takes no query option.
    pub(crate) const NONE: OptionRules = OptionRules {
        supported: &[],
        entity: None,
        expandable: &[],
    };
}

/// A request's query options, parsed into typed values and checked against its resource's
/// rules: what the handlers read.
#[derive(Clone, Debug, Default)]
pub(crate) struct QueryOptions {
    pub(crate) filter: Option<CallRecordFilter>,
    pub(crate) select: Vec<String>,
    pub(crate) expand: Vec<ExpandItem>,
    pub(crate) top: Option<u64>,
    pub(crate) count: bool,
    pub(crate) skip: u64,
    /// The options as sent: next links repeat them, skip tokens are bound to them, and
    /// `$skiptoken` itself stays text here (`api::paging` decodes it against its collection).
    pub(crate) raw: RawQueryOptions,
}

impl QueryOptions {
    /// Checks `raw` against `rules` and parses each option given. The first fault is reported:
    /// an unsupported option, then `$filter`, `$select`, `$expand`, `$top`, `$count`, `$skip`.
    pub(crate) fn parse(raw: RawQueryOptions, rules: &OptionRules) -> Result<Self, QueryError> {
        raw.ensure_only(rules.supported)?;
        let filter = raw.filter.as_deref().map(parse_call_record_filter).transpose()?;
        let (select, expand) = match rules.entity {
            Some(entity) => {
                let select = raw
                    .select
                    .as_deref()
                    .map(|text| parse_select(text, entity))
                    .transpose()?;
                let expand = raw
                    .expand
                    .as_deref()
                    .map(|text| parse_expand(text, entity))
                    .transpose()?;
                (select.unwrap_or_default(), expand.unwrap_or_default())
            }
            None => (Vec::new(), Vec::new()),
        };
        ensure_expand_only(&expand, rules.expandable)?;
        let top = raw.top.as_deref().map(parse_top).transpose()?;
        let count = raw.count.as_deref().map(parse_count).transpose()?.unwrap_or(false);
        let skip = raw.skip.as_deref().map(parse_skip).transpose()?.unwrap_or(0);
        Ok(Self {
            filter,
            select,
            expand,
            top,
            count,
            skip,
            raw,
        })
    }
}

/// Parses `$skip`: a non-negative decimal integer.
fn parse_skip(text: &str) -> Result<u64, QueryError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QueryError::new(
            "$skip",
            format!("$skip must be a non-negative integer, not '{text}'."),
        ));
    }
    text.parse::<u64>()
        .map_err(|_| QueryError::new("$skip", format!("$skip '{text}' is too large.")))
}

/// Parses `$top`: a positive decimal integer.
///
/// Zero, a sign, anything but ASCII digits, and values beyond `u64` are errors.
pub(crate) fn parse_top(text: &str) -> Result<u64, QueryError> {
    let value = if text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<u64>().ok()
    } else {
        None
    };
    match value {
        Some(n) if n > 0 => Ok(n),
        _ => Err(QueryError::new(
            "$top",
            format!("Invalid value '{text}' for query option '$top': expected a positive integer."),
        )),
    }
}

/// Parses `$count`: `true` or `false`, case-insensitively as OData booleans are.
pub(crate) fn parse_count(text: &str) -> Result<bool, QueryError> {
    if text.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if text.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(QueryError::new(
            "$count",
            format!("Invalid value '{text}' for query option '$count': expected true or false."),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{expect, Expect};

    fn check_query(raw: &str, expect: Expect) {
        let actual = match parse_query_string(raw) {
            Ok(options) => options
                .present()
                .map(|option| format!("{}={:?}\n", option.as_str(), options.get(option).unwrap_or_default()))
                .collect::<String>(),
            Err(err) => format!("error {}: {}\n", err.option, err.message),
        };
        expect.assert_eq(&actual);
    }

    fn check_ensure_only(raw: &str, supported: &[QueryOption], expect: Expect) {
        let actual = match parse_query_string(raw).and_then(|options| options.ensure_only(supported)) {
            Ok(()) => "ok".to_owned(),
            Err(err) => format!("error {}: {}", err.option, err.message),
        };
        expect.assert_eq(&actual);
    }

    fn check_top(text: &str, expect: Expect) {
        let actual = match parse_top(text) {
            Ok(n) => n.to_string(),
            Err(err) => format!("error {}: {}", err.option, err.message),
        };
        expect.assert_eq(&actual);
    }

    fn check_count(text: &str, expect: Expect) {
        let actual = match parse_count(text) {
            Ok(b) => b.to_string(),
            Err(err) => format!("error {}: {}", err.option, err.message),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn query_string_accepted_forms() {
        check_query("", expect![[""]]);
        check_query(
            "$top=5",
            expect![[r#"
            $top="5"
        "#]],
        );
        check_query(
            "%24select=id,startDateTime",
            expect![[r#"
            $select="id,startDateTime"
        "#]],
        );
        check_query(
            "$filter=startDateTime+ge+2024-01-01T00:00:00Z",
            expect![[r#"
            $filter="startDateTime ge 2024-01-01T00:00:00Z"
        "#]],
        );
        check_query(
            "$filter=startDateTime%20ge%202024-01-01T00%3A00%3A00Z",
            expect![[r#"
            $filter="startDateTime ge 2024-01-01T00:00:00Z"
        "#]],
        );
        check_query(
            "$FILTER=a&$Select=b&$EXPAND=c",
            expect![[r#"
            $filter="a"
            $select="b"
            $expand="c"
        "#]],
        );
        check_query(
            "api-version=1&foo=bar&$top=1",
            expect![[r#"
            $top="1"
        "#]],
        );
        check_query(
            "$top=&&$count=true",
            expect![[r#"
            $top=""
            $count="true"
        "#]],
        );
        check_query(
            "$expand=sessions(%24expand%3Dsegments)",
            expect![[r#"
            $expand="sessions($expand=segments)"
        "#]],
        );
        check_query(
            "$filter=a%2Bb%252B",
            expect![[r#"
            $filter="a+b%2B"
        "#]],
        );
        check_query(
            "$filter=x&$select=x&$expand=x&$top=x&$skiptoken=x&$skip=x&$count=x&$orderby=x&$search=x&$format=x&$apply=x&$compute=x",
            expect![[r#"
                $filter="x"
                $select="x"
                $expand="x"
                $top="x"
                $skiptoken="x"
                $skip="x"
                $count="x"
                $orderby="x"
                $search="x"
                $format="x"
                $apply="x"
                $compute="x"
            "#]],
        );
    }

    #[test]
    fn query_string_rejected_forms() {
        check_query(
            "$top=1&$top=2",
            expect![[r#"
            error $top: Query option '$top' was specified more than once, but it must be specified at most once.
        "#]],
        );
        check_query(
            "$select=id&%24SELECT=id",
            expect![[r#"
            error $select: Query option '$select' was specified more than once, but it must be specified at most once.
        "#]],
        );
        check_query(
            "$foo=1",
            expect![[r#"
            error query: Query option '$foo' is not allowed. Supported query options are $filter, $select, $expand, $top, $skiptoken, $skip and $count.
        "#]],
        );
        check_query(
            "%24levels=2",
            expect![[r#"
            error query: Query option '$levels' is not allowed. Supported query options are $filter, $select, $expand, $top, $skiptoken, $skip and $count.
        "#]],
        );
        check_query(
            "$=1",
            expect![[r#"
            error query: Query option '$' is not allowed. Supported query options are $filter, $select, $expand, $top, $skiptoken, $skip and $count.
        "#]],
        );
    }

    #[test]
    fn ensure_only_names_the_first_unsupported_option() {
        let list = [
            QueryOption::Filter,
            QueryOption::Select,
            QueryOption::Expand,
            QueryOption::Top,
            QueryOption::SkipToken,
            QueryOption::Count,
        ];
        check_ensure_only("$filter=x&$top=3", &list, expect!["ok"]);
        check_ensure_only(
            "$orderby=startDateTime",
            &list,
            expect!["error $orderby: Query option '$orderby' is not supported on this resource."],
        );
        check_ensure_only(
            "$search=x&$skip=4",
            &list,
            expect!["error $skip: Query option '$skip' is not supported on this resource."],
        );
        check_ensure_only(
            "$format=json",
            &list,
            expect!["error $format: Query option '$format' is not supported on this resource."],
        );
        check_ensure_only(
            "$apply=x",
            &list,
            expect!["error $apply: Query option '$apply' is not supported on this resource."],
        );
        check_ensure_only(
            "$compute=x",
            &list,
            expect!["error $compute: Query option '$compute' is not supported on this resource."],
        );
    }

    #[test]
    fn top_values() {
        check_top("1", expect!["1"]);
        check_top("60", expect!["60"]);
        check_top("007", expect!["7"]);
        check_top("18446744073709551615", expect!["18446744073709551615"]);
        check_top("18446744073709551616", expect!["error $top: Invalid value '18446744073709551616' for query option '$top': expected a positive integer."]);
        check_top(
            "0",
            expect!["error $top: Invalid value '0' for query option '$top': expected a positive integer."],
        );
        check_top(
            "-1",
            expect!["error $top: Invalid value '-1' for query option '$top': expected a positive integer."],
        );
        check_top(
            "+1",
            expect!["error $top: Invalid value '+1' for query option '$top': expected a positive integer."],
        );
        check_top(
            "abc",
            expect!["error $top: Invalid value 'abc' for query option '$top': expected a positive integer."],
        );
        check_top(
            "1.5",
            expect!["error $top: Invalid value '1.5' for query option '$top': expected a positive integer."],
        );
        check_top(
            " 1",
            expect!["error $top: Invalid value ' 1' for query option '$top': expected a positive integer."],
        );
        check_top(
            "",
            expect!["error $top: Invalid value '' for query option '$top': expected a positive integer."],
        );
    }

    #[test]
    fn count_values() {
        check_count("true", expect!["true"]);
        check_count("FALSE", expect!["false"]);
        check_count(
            "1",
            expect!["error $count: Invalid value '1' for query option '$count': expected true or false."],
        );
        check_count(
            "",
            expect!["error $count: Invalid value '' for query option '$count': expected true or false."],
        );
    }

    const LIST: OptionRules = OptionRules {
        supported: &[
            QueryOption::Filter,
            QueryOption::Select,
            QueryOption::Expand,
            QueryOption::Top,
            QueryOption::Count,
            QueryOption::SkipToken,
        ],
        entity: Some(EntityKind::CallRecord),
        expandable: &["organizer_v2"],
    };

    fn parsed(raw: &str, rules: &OptionRules) -> Result<QueryOptions, QueryError> {
        QueryOptions::parse(parse_query_string(raw).unwrap(), rules)
    }

    #[test]
    fn options_reach_handlers_typed_with_the_text_they_came_as() {
        let options = parsed(
            "$top=5&$count=true&$select=id,version&$expand=organizer_v2&$skiptoken=abc&$filter=startDateTime ge 2024-01-01T00:00:00Z",
            &LIST,
        )
        .unwrap();
        assert_eq!(options.top, Some(5));
        assert!(options.count);
        assert_eq!(options.select, ["id", "version"]);
        assert_eq!(options.expand.len(), 1);
        assert_eq!(options.filter.unwrap().start.len(), 1);
        assert_eq!(options.raw.skiptoken.as_deref(), Some("abc"));
        assert_eq!(options.raw.select.as_deref(), Some("id,version"));
        let none = parsed("", &LIST).unwrap();
        assert_eq!((none.top, none.count, none.skip), (None, false, 0));
        assert!(none.select.is_empty() && none.expand.is_empty() && none.filter.is_none());
    }

    #[test]
    fn the_first_fault_is_reported_in_a_fixed_order() {
        let fault = |raw: &str, rules: &OptionRules| parsed(raw, rules).map(|_| ()).unwrap_err().option;
        // An option the resource does not take comes before any value's fault.
        assert_eq!(fault("$top=x&$skip=1", &LIST), "$skip");
        assert_eq!(fault("$top=x&$select=nope", &LIST), "$select");
        assert_eq!(fault("$top=0&$count=maybe", &LIST), "$top");
        assert_eq!(fault("$expand=sessions", &LIST), "$expand");
        let function = OptionRules {
            supported: &[QueryOption::Top, QueryOption::Skip, QueryOption::Count],
            ..OptionRules::NONE
        };
        assert_eq!(fault("$count=true&$skip=-1", &function), "$skip");
        assert_eq!(fault("$skip=99999999999999999999999", &function), "$skip");
        assert_eq!(parsed("$skip=20", &function).unwrap().skip, 20);
        assert_eq!(fault("$top=1", &OptionRules::NONE), "$top");
    }
}
