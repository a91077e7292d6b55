//! `$select`: a comma-separated list of property names of the addressed type.

use winnow::combinator::opt;
use winnow::prelude::*;

use super::entity::EntityKind;
use super::error::QueryError;
use super::syntax::{blanks, expected, identifier, into_query_error, reject, PResult};

const OPTION: &str = "$select";
const WHAT: &str = "Invalid $select";

/// Parses a `$select` value against the properties of `entity`.
///
/// Returns the selected properties in canonical spelling and in the order
/// given, without duplicates. An empty vector means "all properties": that is
/// what `*` asks for, alone or among names. Blanks around commas are allowed.
/// Errors: an empty item, a name that is not a structural or navigation
/// property of `entity`, or a path or other syntax.
pub(crate) fn parse_select(text: &str, entity: EntityKind) -> Result<Vec<String>, QueryError> {
    let mut input = text;
    let parse = |input: &mut &str| -> PResult<Vec<String>> {
        blanks(input)?;
        let res = select_items(input, entity)?;
        blanks(input)?;
        if !input.is_empty() {
            return Err(expected(input, "',' or the end of $select"));
        }
        Ok(res)
    };
    parse(&mut input).map_err(|err| into_query_error(OPTION, WHAT, text, err))
}

/// The item list shared by `$select` and `nav($select=…)` inside `$expand`.
///
/// Stops before anything that is not a comma, so the caller decides what may
/// follow (the end, `;` or `)`).
pub(super) fn select_items(input: &mut &str, entity: EntityKind) -> PResult<Vec<String>> {
    let mut res: Vec<String> = Vec::new();
    let mut all = false;
    loop {
        match select_item(input, entity)? {
            None => all = true,
            Some(property) => {
                if !res.iter().any(|seen| seen == property) {
                    res.push(property.to_owned());
                }
            }
        }
        let before_comma = *input;
        blanks(input)?;
        if opt(',').parse_next(input)?.is_none() {
            *input = before_comma;
            break;
        }
        blanks(input)?;
    }
    if all {
        res.clear();
    }
    Ok(res)
}

/// One property name in canonical spelling, or `None` for `*`.
fn select_item(input: &mut &str, entity: EntityKind) -> PResult<Option<&'static str>> {
    if opt('*').parse_next(input)?.is_some() {
        return Ok(None);
    }
    let name_start = *input;
    let Some(name) = opt(identifier).parse_next(input)? else {
        return Err(expected(input, "a property name"));
    };
    let Some(property) = entity.property(name) else {
        return Err(reject(
            name_start,
            format!(
                "Could not find a property named '{name}' on type '{}'.",
                entity.type_name()
            ),
        ));
    };
    if input.starts_with('/') {
        return Err(reject(
            name_start,
            format!("{WHAT}: selecting a path below '{property}' is not supported; select '{property}' instead."),
        ));
    }
    Ok(Some(property))
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{expect, Expect};

    fn check_select(text: &str, entity: EntityKind, expect: Expect) {
        let actual = match parse_select(text, entity) {
            Ok(properties) => format!("{properties:?}"),
            Err(err) => format!("error {} at {:?}: {}", err.option, err.position, err.message),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn accepted_forms() {
        check_select(
            "id,startDateTime",
            EntityKind::CallRecord,
            expect![[r#"["id", "startDateTime"]"#]],
        );
        check_select(
            " id , STARTDATETIME ,organizer_v2 ",
            EntityKind::CallRecord,
            expect![[r#"["id", "startDateTime", "organizer_v2"]"#]],
        );
        check_select(
            "sessions,participants_v2",
            EntityKind::CallRecord,
            expect![[r#"["sessions", "participants_v2"]"#]],
        );
        check_select("id,id,Id", EntityKind::CallRecord, expect![[r#"["id"]"#]]);
        check_select("*", EntityKind::CallRecord, expect!["[]"]);
        check_select("id,*", EntityKind::Session, expect!["[]"]);
        check_select(
            "isTest,segments,failureInfo",
            EntityKind::Session,
            expect![[r#"["isTest", "segments", "failureInfo"]"#]],
        );
        check_select("media", EntityKind::Segment, expect![[r#"["media"]"#]]);
        check_select(
            "administrativeUnitInfos,identity",
            EntityKind::Participant,
            expect![[r#"["administrativeUnitInfos", "identity"]"#]],
        );
        check_select("identity", EntityKind::Organizer, expect![[r#"["identity"]"#]]);
    }

    #[test]
    fn rejected_forms() {
        check_select("foo", EntityKind::CallRecord, expect!["error $select at Some(0): Could not find a property named 'foo' on type 'microsoft.graph.callRecords.callRecord'."]);
        check_select("id,foo", EntityKind::CallRecord, expect!["error $select at Some(3): Could not find a property named 'foo' on type 'microsoft.graph.callRecords.callRecord'."]);
        check_select("media", EntityKind::CallRecord, expect!["error $select at Some(0): Could not find a property named 'media' on type 'microsoft.graph.callRecords.callRecord'."]);
        check_select("isTest", EntityKind::Segment, expect!["error $select at Some(0): Could not find a property named 'isTest' on type 'microsoft.graph.callRecords.segment'."]);
        check_select("", EntityKind::CallRecord, expect!["error $select at Some(0): Invalid $select: syntax error at position 0 in '': expected a property name."]);
        check_select("id,", EntityKind::CallRecord, expect!["error $select at Some(3): Invalid $select: syntax error at position 3 in 'id,': expected a property name."]);
        check_select("id,,type", EntityKind::CallRecord, expect!["error $select at Some(3): Invalid $select: syntax error at position 3 in 'id,,type': expected a property name."]);
        check_select(",id", EntityKind::CallRecord, expect!["error $select at Some(0): Invalid $select: syntax error at position 0 in ',id': expected a property name."]);
        check_select("id type", EntityKind::CallRecord, expect!["error $select at Some(3): Invalid $select: syntax error at position 3 in 'id type': expected ',' or the end of $select."]);
        check_select("organizer_v2/identity", EntityKind::CallRecord, expect!["error $select at Some(0): Invalid $select: selecting a path below 'organizer_v2' is not supported; select 'organizer_v2' instead."]);
        check_select("id;type", EntityKind::CallRecord, expect!["error $select at Some(2): Invalid $select: syntax error at position 2 in 'id;type': expected ',' or the end of $select."]);
    }
}
