//! `$expand`: which navigation properties to inline, and the
//! canonical text and `@odata.context` shapes derived from them.
//!
//! ```text
//! expand  := item ( "," item )*
//! item    := NAVPROP [ "(" option ( ";" option )* ")" ]
//! option  := "$expand=" expand | "$select=" select-list
//! ```
//!
//! Each name is checked against the type it is applied to while parsing, so
//! nesting can never go deeper than the type graph (callRecord → session →
//! segment) and hostile input cannot recurse without bound.

use winnow::combinator::opt;
use winnow::prelude::*;

use super::entity::EntityKind;
use super::error::QueryError;
use super::select::select_items;
use super::syntax::{blanks, expected, identifier, into_query_error, punct, reject, PResult};

const OPTION: &str = "$expand";
const WHAT: &str = "Invalid $expand";

/// One expanded navigation property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpandItem {
    /// The navigation property, canonically spelled (`sessions`, `segments`, …).
    pub(crate) property: String,
    /// The nested `$select`, if given; `Some(vec![])` means `$select=*`.
    pub(crate) select: Option<Vec<String>>,
    /// The nested `$expand`, empty when not given.
    pub(crate) expand: Vec<ExpandItem>,
}

/// Parses an `$expand` value against the navigation properties of `entity`.
///
/// Accepts only navigation properties that `$expand` supports (see
/// [`EntityKind::navigation_properties`]), each at most once per level, with
/// optional `($select=…;$expand=…)` checked against the target type. Blanks
/// are allowed around every punctuation mark. Errors: unknown or structural
/// properties, `*`, paths, and any other option in parentheses (`$filter`,
/// `$top`, `$levels`, …). Which expansions a given endpoint accepts is a
/// further check; see [`ensure_expand_only`].
pub(crate) fn parse_expand(text: &str, entity: EntityKind) -> Result<Vec<ExpandItem>, QueryError> {
    let mut input = text;
    let parse = |input: &mut &str| -> PResult<Vec<ExpandItem>> {
        blanks(input)?;
        let res = expand_items(input, entity)?;
        blanks(input)?;
        if !input.is_empty() {
            return Err(expected(input, "',' or the end of $expand"));
        }
        Ok(res)
    };
    parse(&mut input).map_err(|err| into_query_error(OPTION, WHAT, text, err))
}

/// Checks that every top-level item is one of `allowed`, for endpoints that
/// accept less than the type does (the list accepts `organizer_v2`
/// only: Graph's listed records never inline the others). Nested items are not checked.
pub(crate) fn ensure_expand_only(items: &[ExpandItem], allowed: &[&str]) -> Result<(), QueryError> {
    match items.iter().find(|item| !allowed.contains(&item.property.as_str())) {
        None => Ok(()),
        Some(item) if allowed.is_empty() => Err(QueryError::new(
            OPTION,
            format!("Expanding '{}' is not supported on this resource.", item.property),
        )),
        Some(item) => Err(QueryError::new(
            OPTION,
            format!(
                "Expanding '{}' is not supported on this resource. Supported here: {}.",
                item.property,
                allowed.join(", ")
            ),
        )),
    }
}

/// Renders items back as a canonical `$expand` value, e.g.
/// `sessions($select=id,caller;$expand=segments)`, for nextLinks.
///
/// `parse_expand(&format_expand(items), entity)` gives `items` back for any
/// items that `parse_expand` produced. The text is not URL-encoded.
pub(crate) fn format_expand(items: &[ExpandItem]) -> String {
    let mut res = String::new();
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            res.push(',');
        }
        res.push_str(&item.property);
        let mut options = Vec::new();
        if let Some(select) = &item.select {
            let list = if select.is_empty() {
                "*".to_owned()
            } else {
                select.join(",")
            };
            options.push(format!("$select={list}"));
        }
        if !item.expand.is_empty() {
            options.push(format!("$expand={}", format_expand(&item.expand)));
        }
        if !options.is_empty() {
            res.push('(');
            res.push_str(&options.join(";"));
            res.push(')');
        }
    }
    res
}

/// The `@odata.context` shape of expanded items, comma-joined: every item
/// becomes `name(…)` holding its selected properties and nested items, so
/// `sessions($expand=segments)` gives `sessions(segments())` and
/// `participants_v2` gives `participants_v2()`, as in Graph's examples.
///
/// The caller wraps it with the top-level select, or uses [`context_projection`].
pub(crate) fn context_expand_suffix(items: &[ExpandItem]) -> String {
    items
        .iter()
        .map(|item| {
            let mut parts: Vec<String> = match &item.select {
                Some(select) if select.is_empty() => vec!["*".to_owned()],
                Some(select) => select.clone(),
                None => Vec::new(),
            };
            if !item.expand.is_empty() {
                parts.push(context_expand_suffix(&item.expand));
            }
            format!("{}({})", item.property, parts.join(","))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The parenthesised projection that follows the entity set in
/// `@odata.context`, e.g. `(id,startDateTime)` or `(sessions(segments()))`;
/// `None` when neither a `$select` (non-empty, as [`parse_select`](super::select::parse_select)
/// returns it) nor an `$expand` applies.
pub(crate) fn context_projection(select: &[String], expand: &[ExpandItem]) -> Option<String> {
    let mut parts: Vec<String> = select.to_vec();
    if !expand.is_empty() {
        parts.push(context_expand_suffix(expand));
    }
    if parts.is_empty() {
        None
    } else {
        Some(format!("({})", parts.join(",")))
    }
}

fn expand_items(input: &mut &str, entity: EntityKind) -> PResult<Vec<ExpandItem>> {
    let mut res: Vec<ExpandItem> = Vec::new();
    loop {
        let item_start = *input;
        let item = expand_item(input, entity)?;
        if res.iter().any(|seen| seen.property == item.property) {
            return Err(reject(
                item_start,
                format!("{WHAT}: '{}' is expanded more than once.", item.property),
            ));
        }
        res.push(item);
        let before_comma = *input;
        blanks(input)?;
        if opt(',').parse_next(input)?.is_none() {
            *input = before_comma;
            return Ok(res);
        }
        blanks(input)?;
    }
}

fn expand_item(input: &mut &str, entity: EntityKind) -> PResult<ExpandItem> {
    let name_start = *input;
    if input.starts_with('*') {
        let message = if entity.navigation_properties().is_empty() {
            format!(
                "{WHAT}: '*' is not supported, and nothing on type '{}' can be expanded.",
                entity.type_name()
            )
        } else {
            format!(
                "{WHAT}: '*' is not supported; name the properties to expand ({}).",
                supported_list(entity)
            )
        };
        return Err(reject(name_start, message));
    }
    let Some(name) = opt(identifier).parse_next(input)? else {
        return Err(expected(input, "a navigation property"));
    };
    let Some((property, target)) = entity.navigation_property(name) else {
        return Err(reject(name_start, unknown_navigation(entity, name)));
    };
    if input.starts_with('/') {
        return Err(reject(
            name_start,
            format!("{WHAT}: expand paths below '{property}' are not supported; nest them as {property}($expand=…)."),
        ));
    }
    let mut item = ExpandItem {
        property: property.to_owned(),
        select: None,
        expand: Vec::new(),
    };
    let before_paren = *input;
    blanks(input)?;
    if opt('(').parse_next(input)?.is_none() {
        *input = before_paren;
        return Ok(item);
    }
    blanks(input)?;
    loop {
        expand_option(input, property, target, &mut item)?;
        blanks(input)?;
        if opt(';').parse_next(input)?.is_none() {
            break;
        }
        blanks(input)?;
    }
    punct(input, ')', "';' or ')'")?;
    Ok(item)
}

/// One `$select=…` or `$expand=…` inside `nav(…)`, stored into `item`.
fn expand_option(input: &mut &str, property: &str, target: EntityKind, item: &mut ExpandItem) -> PResult<()> {
    let option_start = *input;
    let name = match opt(('$', identifier).take()).parse_next(input)? {
        Some(name) => name,
        None => return Err(expected(input, "$select or $expand")),
    };
    let is_select = name.eq_ignore_ascii_case("$select");
    if !is_select && !name.eq_ignore_ascii_case("$expand") {
        return Err(reject(
            option_start,
            format!(
                "{WHAT}: query option '{name}' is not supported inside {property}(…); \
                 only $select and $expand are."
            ),
        ));
    }
    let already = if is_select {
        item.select.is_some()
    } else {
        !item.expand.is_empty()
    };
    if already {
        return Err(reject(
            option_start,
            format!(
                "{WHAT}: '{}' is given more than once inside {property}(…).",
                name.to_ascii_lowercase()
            ),
        ));
    }
    blanks(input)?;
    punct(input, '=', "'='")?;
    blanks(input)?;
    if is_select {
        item.select = Some(select_items(input, target)?);
    } else {
        item.expand = expand_items(input, target)?;
    }
    Ok(())
}

fn unknown_navigation(entity: EntityKind, name: &str) -> String {
    let type_name = entity.type_name();
    if entity.navigation_properties().is_empty() {
        return format!(
            "Could not find a navigation property named '{name}' on type '{type_name}'; \
             nothing on this type can be expanded."
        );
    }
    let supported = supported_list(entity);
    match entity.property(name) {
        Some(property) => format!(
            "Property '{property}' on type '{type_name}' is not a navigation property and cannot be expanded. \
             $expand supports {supported} here."
        ),
        None => format!(
            "Could not find a navigation property named '{name}' on type '{type_name}'. \
             $expand supports {supported} here."
        ),
    }
}

fn supported_list(entity: EntityKind) -> String {
    entity
        .navigation_properties()
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::super::select::parse_select;
    use super::*;
    use expect_test::{expect, Expect};
    use proptest::prelude::*;

    fn check_expand(text: &str, entity: EntityKind, expect: Expect) {
        let actual = match parse_expand(text, entity) {
            Ok(items) => format!(
                "{}\ncontext: {}\n",
                format_expand(&items),
                context_expand_suffix(&items)
            ),
            Err(err) => format!("error {} at {:?}: {}\n", err.option, err.position, err.message),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn accepted_forms() {
        let call_record = EntityKind::CallRecord;
        check_expand(
            "sessions",
            call_record,
            expect![[r#"
            sessions
            context: sessions()
        "#]],
        );
        check_expand(
            "sessions($expand=segments)",
            call_record,
            expect![[r#"
            sessions($expand=segments)
            context: sessions(segments())
        "#]],
        );
        check_expand(
            "sessions( $expand = segments )",
            call_record,
            expect![[r#"
            sessions($expand=segments)
            context: sessions(segments())
        "#]],
        );
        check_expand(
            "sessions ($expand=segments)",
            call_record,
            expect![[r#"
            sessions($expand=segments)
            context: sessions(segments())
        "#]],
        );
        check_expand(
            "sessions($expand=segments;$select=id)",
            call_record,
            expect![[r#"
            sessions($select=id;$expand=segments)
            context: sessions(id,segments())
        "#]],
        );
        check_expand(
            "sessions($select=id,caller ; $expand=segments($select=id,media))",
            call_record,
            expect![[r#"
            sessions($select=id,caller;$expand=segments($select=id,media))
            context: sessions(id,caller,segments(id,media))
        "#]],
        );
        check_expand(
            "sessions($select=*)",
            call_record,
            expect![[r#"
            sessions($select=*)
            context: sessions(*)
        "#]],
        );
        check_expand(
            "participants_v2",
            call_record,
            expect![[r#"
            participants_v2
            context: participants_v2()
        "#]],
        );
        check_expand(
            "organizer_v2",
            call_record,
            expect![[r#"
            organizer_v2
            context: organizer_v2()
        "#]],
        );
        check_expand(
            "participants_v2($select=identity)",
            call_record,
            expect![[r#"
            participants_v2($select=identity)
            context: participants_v2(identity)
        "#]],
        );
        check_expand(
            "Sessions($EXPAND=Segments),PARTICIPANTS_V2 , organizer_v2",
            call_record,
            expect![[r#"
            sessions($expand=segments),participants_v2,organizer_v2
            context: sessions(segments()),participants_v2(),organizer_v2()
        "#]],
        );
        check_expand(
            "segments",
            EntityKind::Session,
            expect![[r#"
            segments
            context: segments()
        "#]],
        );
        check_expand(
            "segments($select=media)",
            EntityKind::Session,
            expect![[r#"
            segments($select=media)
            context: segments(media)
        "#]],
        );
    }

    #[test]
    fn rejected_forms() {
        let call_record = EntityKind::CallRecord;
        check_expand(
            "sessions($filter=isTest eq true)",
            call_record,
            expect![[r#"
            error $expand at Some(9): Invalid $expand: query option '$filter' is not supported inside sessions(…); only $select and $expand are.
        "#]],
        );
        check_expand(
            "sessions($top=1)",
            call_record,
            expect![[r#"
            error $expand at Some(9): Invalid $expand: query option '$top' is not supported inside sessions(…); only $select and $expand are.
        "#]],
        );
        check_expand(
            "sessions($levels=2)",
            call_record,
            expect![[r#"
            error $expand at Some(9): Invalid $expand: query option '$levels' is not supported inside sessions(…); only $select and $expand are.
        "#]],
        );
        check_expand(
            "sessions($expand=*)",
            call_record,
            expect![[r#"
            error $expand at Some(17): Invalid $expand: '*' is not supported; name the properties to expand (segments).
        "#]],
        );
        check_expand(
            "*",
            call_record,
            expect![[r#"
            error $expand at Some(0): Invalid $expand: '*' is not supported; name the properties to expand (sessions, participants_v2, organizer_v2).
        "#]],
        );
        check_expand(
            "*",
            EntityKind::Segment,
            expect![[r#"
            error $expand at Some(0): Invalid $expand: '*' is not supported, and nothing on type 'microsoft.graph.callRecords.segment' can be expanded.
        "#]],
        );
        check_expand(
            "segments",
            call_record,
            expect![[r#"
            error $expand at Some(0): Could not find a navigation property named 'segments' on type 'microsoft.graph.callRecords.callRecord'. $expand supports sessions, participants_v2, organizer_v2 here.
        "#]],
        );
        check_expand(
            "startDateTime",
            call_record,
            expect![[r#"
            error $expand at Some(0): Property 'startDateTime' on type 'microsoft.graph.callRecords.callRecord' is not a navigation property and cannot be expanded. $expand supports sessions, participants_v2, organizer_v2 here.
        "#]],
        );
        check_expand(
            "media",
            EntityKind::Segment,
            expect![[r#"
            error $expand at Some(0): Could not find a navigation property named 'media' on type 'microsoft.graph.callRecords.segment'; nothing on this type can be expanded.
        "#]],
        );
        check_expand(
            "sessions/segments",
            call_record,
            expect![[r#"
            error $expand at Some(0): Invalid $expand: expand paths below 'sessions' are not supported; nest them as sessions($expand=…).
        "#]],
        );
        check_expand(
            "sessions,sessions",
            call_record,
            expect![[r#"
            error $expand at Some(9): Invalid $expand: 'sessions' is expanded more than once.
        "#]],
        );
        check_expand(
            "sessions($expand=segments($expand=media))",
            call_record,
            expect![[r#"
            error $expand at Some(34): Could not find a navigation property named 'media' on type 'microsoft.graph.callRecords.segment'; nothing on this type can be expanded.
        "#]],
        );
        check_expand(
            "sessions($select=foo)",
            call_record,
            expect![[r#"
            error $expand at Some(17): Could not find a property named 'foo' on type 'microsoft.graph.callRecords.session'.
        "#]],
        );
        check_expand(
            "sessions($select=id;$select=caller)",
            call_record,
            expect![[r#"
            error $expand at Some(20): Invalid $expand: '$select' is given more than once inside sessions(…).
        "#]],
        );
        check_expand(
            "sessions($expand=segments",
            call_record,
            expect![[r#"
            error $expand at Some(25): Invalid $expand: syntax error at position 25 in 'sessions($expand=segments': expected ';' or ')'.
        "#]],
        );
        check_expand(
            "sessions($expand=segments))",
            call_record,
            expect![[r#"
            error $expand at Some(26): Invalid $expand: syntax error at position 26 in 'sessions($expand=segments))': expected ',' or the end of $expand.
        "#]],
        );
        check_expand(
            "sessions()",
            call_record,
            expect![[r#"
            error $expand at Some(9): Invalid $expand: syntax error at position 9 in 'sessions()': expected $select or $expand.
        "#]],
        );
        check_expand(
            "sessions(expand=segments)",
            call_record,
            expect![[r#"
            error $expand at Some(9): Invalid $expand: syntax error at position 9 in 'sessions(expand=segments)': expected $select or $expand.
        "#]],
        );
        check_expand(
            "sessions($expand=)",
            call_record,
            expect![[r#"
            error $expand at Some(17): Invalid $expand: syntax error at position 17 in 'sessions($expand=)': expected a navigation property.
        "#]],
        );
        check_expand(
            "",
            call_record,
            expect![[r#"
            error $expand at Some(0): Invalid $expand: syntax error at position 0 in '': expected a navigation property.
        "#]],
        );
        check_expand(
            "sessions,",
            call_record,
            expect![[r#"
            error $expand at Some(9): Invalid $expand: syntax error at position 9 in 'sessions,': expected a navigation property.
        "#]],
        );
    }

    #[test]
    fn ensure_expand_only_on_the_list() {
        let check = |text: &str, expect: Expect| {
            let actual = match parse_expand(text, EntityKind::CallRecord)
                .and_then(|items| ensure_expand_only(&items, &["organizer_v2"]))
            {
                Ok(()) => "ok".to_owned(),
                Err(err) => format!("error {}: {}", err.option, err.message),
            };
            expect.assert_eq(&actual);
        };
        check("organizer_v2", expect!["ok"]);
        check(
            "organizer_v2,sessions($expand=segments)",
            expect![
                "error $expand: Expanding 'sessions' is not supported on this resource. Supported here: organizer_v2."
            ],
        );
        check("participants_v2", expect!["error $expand: Expanding 'participants_v2' is not supported on this resource. Supported here: organizer_v2."]);
    }

    #[test]
    fn context_projection_shapes() {
        let check = |select: &str, expand: &str, expect: Expect| {
            let select = if select.is_empty() {
                Vec::new()
            } else {
                parse_select(select, EntityKind::CallRecord).unwrap_or_default()
            };
            let expand = if expand.is_empty() {
                Vec::new()
            } else {
                parse_expand(expand, EntityKind::CallRecord).unwrap_or_default()
            };
            expect.assert_eq(&format!("{:?}", context_projection(&select, &expand)));
        };
        check("", "", expect!["None"]);
        check("id,startDateTime", "", expect![[r#"Some("(id,startDateTime)")"#]]);
        check(
            "",
            "sessions($expand=segments)",
            expect![[r#"Some("(sessions(segments()))")"#]],
        );
        check("", "participants_v2", expect![[r#"Some("(participants_v2())")"#]]);
        check(
            "id",
            "sessions($select=id;$expand=segments)",
            expect![[r#"Some("(id,sessions(id,segments()))")"#]],
        );
    }

    fn select_strategy(entity: EntityKind) -> impl Strategy<Value = Option<Vec<String>>> {
        let properties = entity.properties();
        prop::option::of(prop::sample::subsequence(properties, 0..=properties.len()).prop_shuffle())
            .prop_map(|select| select.map(|names| names.into_iter().map(str::to_owned).collect()))
    }

    fn items_strategy(entity: EntityKind) -> BoxedStrategy<Vec<ExpandItem>> {
        let navigation = entity.navigation_properties();
        if navigation.is_empty() {
            return Just(Vec::new()).boxed();
        }
        prop::sample::subsequence(navigation, 1..=navigation.len())
            .prop_shuffle()
            .prop_flat_map(|chosen| {
                chosen
                    .into_iter()
                    .map(|(property, target)| {
                        let nested = prop_oneof![Just(Vec::new()), items_strategy(target)];
                        (select_strategy(target), nested).prop_map(move |(select, expand)| ExpandItem {
                            property: property.to_owned(),
                            select,
                            expand,
                        })
                    })
                    .collect::<Vec<_>>()
            })
            .boxed()
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(items in items_strategy(EntityKind::CallRecord)) {
            let text = format_expand(&items);
            let parsed = parse_expand(&text, EntityKind::CallRecord)
                .map_err(|err| TestCaseError::fail(format!("{text}: {}", err.message)))?;
            prop_assert_eq!(parsed, items);
        }

        #[test]
        fn never_panics_on_expand_like_text(text in "[ ()$=;,*/a-zA-Z_2]{0,60}") {
            let _ = parse_expand(&text, EntityKind::CallRecord);
            let _ = parse_select(&text, EntityKind::CallRecord);
        }
    }
}
