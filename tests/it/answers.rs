//! Every shape of answer, byte for byte. A fixed set of generated records and usage-log rows is
//! read through every kind of URL the API serves (records, their expansions and projections,
//! sessions, segments, participants, counts, paged collections followed link by link, the
//! usage-log functions, v1.0 and beta), and the answers must be the same bytes on SQLite and on
//! PostgreSQL. A change to how documents or keys are stored, or an upgrade of a store in place,
//! shows with the same walk that no answer changed.

use std::collections::BTreeMap;

use callrecords::generate::{generate, GenerateOptions, Generated};
use serde_json::Value;

use crate::support::*;

/// The generated tenant (enough calls for paging, and every usage-log kind) and a meeting with
/// more sessions and participants than an expansion's first page holds.
fn generated() -> (Vec<Value>, BTreeMap<&'static str, Vec<Value>>) {
    let options = GenerateOptions {
        calls: 120,
        seed: 11,
        days: 10,
        until: time::macros::datetime!(2024-03-11 00:00 UTC),
    };
    let mut records = Vec::new();
    let mut rows: BTreeMap<&'static str, Vec<Value>> = BTreeMap::new();
    generate(&options, |item| {
        let kind = match &item {
            Generated::CallRecord(_) => None,
            Generated::PstnCall(_) => Some("pstnCalls"),
            Generated::DirectRoutingCall(_) => Some("directRoutingCalls"),
            Generated::SmsLog(_) => Some("smsLogs"),
            Generated::PstnBlockedUser(_) => Some("pstnBlockedUsers"),
            Generated::PstnOnlineMeetingDialout(_) => Some("pstnOnlineMeetingDialoutReport"),
        };
        match kind {
            None => records.push(item.value().clone()),
            Some(kind) => rows.entry(kind).or_default().push(item.value().clone()),
        }
    });
    let attendees: Vec<String> = (0..140).map(|n| format!("attendee-{n}")).collect();
    let attendees: Vec<&str> = attendees.iter().map(String::as_str).collect();
    let mut big = record("big-meeting", "2024-03-05T10:00:00Z", 75, &attendees);
    // Sent, so that the time of ingest does not fill it in.
    big["lastModifiedDateTime"] = "2024-03-05T11:00:00Z".into();
    records.push(big);
    (records, rows)
}

/// The answer's status and body, with the server's own address made neutral.
fn normalized(app: &TestApp, answer: &Answer) -> String {
    format!("{} {}", answer.status, answer.text.replace(&app.url(""), "BASE"))
}

/// Reads `first` and every page its next links lead to (an expanded collection's included),
/// under `headers`.
async fn pages(app: &TestApp, first: &str, headers: &[(&str, &str)], answers: &mut BTreeMap<String, String>) {
    let mut links = vec![(format!("{first} [{headers:?}]"), app.url(first))];
    while let Some((name, url)) = links.pop() {
        let answer = app.follow(&url, headers).await;
        let body = serde_json::from_str::<Value>(&answer.text).ok();
        for (key, value) in body.iter().filter_map(Value::as_object).flatten() {
            if let (Some(next), true) = (value.as_str(), key.ends_with("@odata.nextLink")) {
                links.push((format!("{name} > {key}"), next.to_owned()));
            }
        }
        let previous = answers.insert(name.clone(), normalized(app, &answer));
        assert!(previous.is_none(), "{name} read twice");
        assert!(answers.len() < 5_000, "{first} pages on and on");
    }
}

fn ids(values: &[Value], key: &str) -> Vec<String> {
    values
        .iter()
        .filter_map(|value| value[key].as_str().map(str::to_owned))
        .collect()
}

/// Stores the generated records and usage-log rows.
pub(crate) async fn ingest_generated(app: &TestApp) {
    let (records, rows) = generated();
    for chunk in records.chunks(40) {
        app.ingest_ok(chunk).await;
    }
    for (kind, rows) in &rows {
        app.ingest_kind_ok(kind, rows).await;
    }
}

/// Asserts that `store` (how the second store came to be, for the message) gives every answer
/// of `expected` and no other: the walk covers more than 300.
pub(crate) fn assert_same_answers(expected: &BTreeMap<String, String>, actual: &BTreeMap<String, String>, store: &str) {
    assert!(expected.len() > 300, "the walk covers {} answers", expected.len());
    for (request, answer) in expected {
        let now = actual.get(request).map(String::as_str).unwrap_or("(no answer)");
        assert!(
            now == answer,
            "{request}: {store} answers\n{now:.2000}\nwhere it should answer\n{answer:.2000}"
        );
    }
    assert_eq!(expected.len(), actual.len(), "the same requests were answered");
}

/// Every answer of the walk over the generated records, by the request that gave it.
pub(crate) async fn answers(app: &TestApp) -> BTreeMap<String, String> {
    let (records, _) = generated();
    let mut answers = BTreeMap::new();
    let small_pages = [("prefer", "odata.maxpagesize=7")];
    for version in ["/v1.0", "/beta"] {
        let list = format!("{version}/communications/callRecords");
        for query in [
            "",
            "?$count=true",
            "?$top=9",
            "?$select=id,type,modalities,version,organizer_v2",
            "?$expand=organizer_v2",
            "?$filter=startDateTime ge 2024-03-05T00:00:00Z and startDateTime lt 2024-03-07T00:00:00Z",
        ] {
            pages(app, &format!("{list}{query}"), &small_pages, &mut answers).await;
        }
        pages(app, &format!("{list}/$count"), &[], &mut answers).await;
        pages(app, &format!("{version}/$metadata"), &[], &mut answers).await;
    }

    // Each record whole, and the records with the most sessions and participants piece by piece.
    let mut by_sessions: Vec<&Value> = records.iter().collect();
    by_sessions.sort_by_key(|record| std::cmp::Reverse(record["sessions"].as_array().map_or(0, Vec::len)));
    let mut by_participants: Vec<&Value> = records.iter().collect();
    by_participants.sort_by_key(|record| std::cmp::Reverse(record["participants_v2"].as_array().map_or(0, Vec::len)));
    let mut some: Vec<&Value> = by_sessions
        .iter()
        .take(3)
        .chain(by_participants.iter().take(3))
        .copied()
        .collect();
    some.sort_by_key(|record| record["id"].as_str());
    some.dedup_by_key(|record| record["id"].as_str());
    let mut seen = std::collections::BTreeSet::new();
    for record in &records {
        let id = record["id"].as_str().unwrap();
        if !seen.insert(id.to_owned()) {
            continue;
        }
        let path = format!("/v1.0/communications/callRecords/{id}");
        pages(
            app,
            &format!("{path}?$expand=sessions($expand=segments),participants_v2"),
            &[],
            &mut answers,
        )
        .await;
    }
    let participant = some[0]["participants_v2"][0]["id"]
        .as_str()
        .unwrap_or("none")
        .to_owned();
    for version in ["/v1.0", "/beta"] {
        pages(
            app,
            &format!("{version}/communications/callRecords?$filter=participants_v2/any(p:p/id eq '{participant}')"),
            &small_pages,
            &mut answers,
        )
        .await;
        for record in &some {
            let id = record["id"].as_str().unwrap();
            let path = format!("{version}/communications/callRecords/{id}");
            for query in ["", "?$select=id,version,startDateTime", "?$expand=sessions"] {
                pages(app, &format!("{path}{query}"), &[], &mut answers).await;
            }
            for child in ["sessions", "participants_v2"] {
                pages(
                    app,
                    &format!("{path}/{child}"),
                    &[("prefer", "odata.maxpagesize=4")],
                    &mut answers,
                )
                .await;
                pages(app, &format!("{path}/{child}/$count"), &[], &mut answers).await;
            }
            pages(
                app,
                &format!("{path}/sessions?$expand=segments&$select=id,startDateTime"),
                &[],
                &mut answers,
            )
            .await;
            pages(app, &format!("{path}/organizer_v2"), &[], &mut answers).await;
            let sessions = record["sessions"].as_array().cloned().unwrap_or_default();
            for session in sessions.iter().take(2) {
                let session_id = session["id"].as_str().unwrap();
                let session_path = format!("{path}/sessions/{session_id}");
                pages(app, &session_path, &[], &mut answers).await;
                pages(app, &format!("{session_path}/segments?$count=true"), &[], &mut answers).await;
                if let Some(segment) = ids(session["segments"].as_array().unwrap_or(&Vec::new()), "id").first() {
                    pages(app, &format!("{session_path}/segments/{segment}"), &[], &mut answers).await;
                }
            }
            for participant in ids(record["participants_v2"].as_array().unwrap_or(&Vec::new()), "id")
                .iter()
                .take(2)
            {
                pages(app, &format!("{path}/participants_v2/{participant}"), &[], &mut answers).await;
            }
        }
        let range = "fromDateTime=2024-03-01,toDateTime=2024-03-11";
        let mut functions = vec!["getPstnCalls", "getDirectRoutingCalls"];
        if version == "/beta" {
            functions.extend([
                "getSmsLog",
                "getPstnBlockedUsersLog",
                "getPstnOnlineMeetingDialoutReport",
            ]);
        }
        for function in functions {
            let path = format!("{version}/communications/callRecords/{function}({range})");
            pages(app, &path, &[], &mut answers).await;
            pages(app, &format!("{path}?$top=3"), &[], &mut answers).await;
        }
    }
    answers
}

#[tokio::test]
async fn every_answer_is_the_same_bytes_on_both_stores() {
    let sqlite = TestApp::spawn(Backend::Sqlite).await;
    let postgres = TestApp::spawn(Backend::Postgres).await;
    tokio::join!(ingest_generated(&sqlite), ingest_generated(&postgres));
    let (on_sqlite, on_postgres) = tokio::join!(answers(&sqlite), answers(&postgres));
    eprintln!("{} answers, the same on both stores", on_sqlite.len());
    assert!(on_sqlite.len() > 300, "the walk covers {} answers", on_sqlite.len());
    for expanded in ["sessions@odata.nextLink", "participants_v2@odata.nextLink"] {
        assert!(
            on_sqlite.keys().any(|request| request.contains(expanded)),
            "the walk follows {expanded}"
        );
    }
    let ok = on_sqlite.values().filter(|answer| answer.starts_with("200 ")).count();
    assert!(
        ok * 10 >= on_sqlite.len() * 9,
        "{ok} of {} answered 200",
        on_sqlite.len()
    );
    assert_eq!(
        on_sqlite.keys().collect::<Vec<_>>(),
        on_postgres.keys().collect::<Vec<_>>(),
        "the same walk on both"
    );
    for (request, answer) in &on_sqlite {
        let other = &on_postgres[request];
        if answer != other {
            let at = answer.bytes().zip(other.bytes()).take_while(|(a, b)| a == b).count();
            let around = |text: &str| {
                text.get(at.saturating_sub(80)..(at + 80).min(text.len()))
                    .unwrap_or("")
                    .to_owned()
            };
            panic!(
                "{request}: the answers differ from byte {at}\n  SQLite:     …{}…\n  PostgreSQL: …{}…",
                around(answer),
                around(other)
            );
        }
    }
}
