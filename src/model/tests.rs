use serde_json::{json, Value};

use super::*;

/// Every JSON example of Graph's Get callRecord and List callRecords docs pages, one record a file.
const SEED_EXAMPLES: &[(&str, &str)] = &[
    ("get_0_0", include_str!("testdata/get_0_0.json")),
    ("get_1_0", include_str!("testdata/get_1_0.json")),
    ("list_0_0", include_str!("testdata/list_0_0.json")),
    ("list_0_1", include_str!("testdata/list_0_1.json")),
    ("list_1_0", include_str!("testdata/list_1_0.json")),
    ("list_2_0", include_str!("testdata/list_2_0.json")),
];

/// Asserts that every value of `sent` comes back at the same place in `returned`. `returned` may
/// add declared properties as null and `@odata.type` on polymorphic values; annotations other
/// than `@odata.type` (contexts, next links) are not part of the record and are skipped.
fn assert_contains(path: &str, sent: &Value, returned: &Value) {
    match (sent, returned) {
        (Value::Object(sent), Value::Object(returned)) => {
            for (key, value) in sent {
                if key.contains('@') && key != "@odata.type" {
                    continue;
                }
                let child = format!("{path}.{key}");
                if key == "@odata.type" && !returned.contains_key(key) {
                    // Graph sometimes writes the declared type's name; we write only derived ones.
                    continue;
                }
                let Some(back) = returned.get(key) else {
                    panic!("{child} was sent but not returned");
                };
                assert_contains(&child, value, back);
            }
        }
        (Value::Array(sent), Value::Array(returned)) => {
            assert_eq!(sent.len(), returned.len(), "{path} length");
            for (i, (a, b)) in sent.iter().zip(returned).enumerate() {
                assert_contains(&format!("{path}[{i}]"), a, b);
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            assert_eq!(a.as_f64(), b.as_f64(), "{path}");
        }
        _ => assert_eq!(sent, returned, "{path}"),
    }
}

#[test]
fn every_seed_example_round_trips() {
    for (name, text) in SEED_EXAMPLES {
        let record = parse_call_record(text.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        record.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        let returned = serde_json::to_value(&record).unwrap();
        let sent: Value = serde_json::from_str(text).unwrap();
        assert_contains(name, &sent, &returned);
        let reparsed = parse_call_record(returned.to_string().as_bytes()).unwrap();
        assert_eq!(reparsed, record, "{name} reparsed");
    }
}

#[test]
fn full_details_example_keeps_types_and_values() {
    let record = parse_call_record(include_str!("testdata/get_1_0.json").as_bytes()).unwrap();
    let returned = serde_json::to_value(&record).unwrap();
    let session = &returned["sessions"][0];
    assert_eq!(
        session["caller"]["@odata.type"],
        "#microsoft.graph.callRecords.participantEndpoint"
    );
    assert_eq!(
        session["caller"]["userAgent"]["@odata.type"],
        "#microsoft.graph.callRecords.clientUserAgent"
    );
    assert_eq!(returned["startDateTime"], "2020-02-25T18:52:21.2169889Z");
    assert_eq!(returned["lastModifiedDateTime"], "2020-02-25T19:00:24.582757Z");
    let stream = &session["segments"][0]["media"][0]["streams"][1];
    assert_eq!(stream["averageJitter"], "PT0.007S");
    assert_eq!(stream["averagePacketLossRate"].to_string(), "0.01381693");
    assert_eq!(stream["averageAudioDegradation"].to_string(), "1.160898");
    let network = &session["segments"][0]["media"][0]["calleeNetwork"];
    assert_eq!(network["linkSpeed"], json!(4294967295u64));
    assert_eq!(network["traceRouteHops"], json!([]));
    assert_eq!(network["dnsSuffix"], Value::Null);
    assert_eq!(session["callee"]["feedback"]["tokens"]["Noisy"], json!(true));
}

#[test]
fn open_identity_properties_are_kept_verbatim() {
    let record = parse_call_record(include_str!("testdata/list_0_1.json").as_bytes()).unwrap();
    let returned = serde_json::to_value(&record).unwrap();
    let identity = &returned["organizer_v2"]["identity"];
    assert_eq!(identity["acsUser"], Value::Null);
    assert!(identity.as_object().unwrap().contains_key("spoolUser"));
    assert_eq!(identity["phone"]["id"], "+5564981205182");
    assert!(identity["phone"].as_object().unwrap().contains_key("tenantId"));
}

fn minimal() -> Value {
    json!({
        "id": "rec-1", "version": 1, "type": "groupCall", "modalities": ["audio"],
        "startDateTime": "2024-01-01T10:00:00Z", "endDateTime": "2024-01-01T10:30:00Z",
        "sessions": [{ "id": "s1", "startDateTime": "2024-01-01T10:00:00Z", "endDateTime": "2024-01-01T10:30:00Z",
            "caller": { "@odata.type": "#microsoft.graph.callRecords.participantEndpoint", "name": "pc" },
            "callee": { "@odata.type": "#microsoft.graph.callRecords.serviceEndpoint",
                        "userAgent": { "@odata.type": "#microsoft.graph.callRecords.serviceUserAgent", "role": "mediaController" } },
            "segments": [{ "id": "g1", "startDateTime": "2024-01-01T10:00:00Z", "endDateTime": "2024-01-01T10:30:00Z",
                "media": [{ "label": "main-audio", "streams": [{ "streamDirection": "callerToCallee", "averageJitter": "PT0.016S" }] }] }] }],
        "participants_v2": [{ "id": "u1", "identity": { "user": { "id": "u1", "displayName": "Ann" } } }],
        "organizer_v2": { "id": "u1", "identity": { "user": { "id": "u1", "displayName": "Ann" } } }
    })
}

fn reject(mutate: impl FnOnce(&mut Value)) -> RecordError {
    let mut value = minimal();
    mutate(&mut value);
    match parse_call_record(value.to_string().as_bytes()) {
        Err(error) => error,
        Ok(record) => record.validate().expect_err("expected the record to be refused"),
    }
}

#[test]
fn invalid_records_name_the_path_and_the_reason() {
    type Mutation = Box<dyn FnOnce(&mut Value)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (Box::new(|v| v["startDateTime"] = json!("yesterday")), "startDateTime: 'yesterday' is not an ISO 8601 date and time such as 2024-01-31T09:30:00Z"),
        (Box::new(|v| v["type"] = json!("conference")), "type: 'conference' is not a member of microsoft.graph.callRecords.callType; expected one of: unknown, groupCall, peerToPeer, unknownFutureValue"),
        (Box::new(|v| v["version"] = json!("2")), "version: invalid type: string \"2\", expected i64"),
        (Box::new(|v| v["sessions"][0]["segments"][0]["media"][0]["streams"][0]["averageJitter"] = json!(0.016)),
            "sessions[0].segments[0].media[0].streams[0].averageJitter: invalid type: number, expected a string"),
        (Box::new(|v| v["sessions"][0]["callee"]["name"] = json!("x")),
            "sessions[0].callee: a serviceendpoint has only userAgent; properties such as name, feedback and associatedIdentity belong to #microsoft.graph.callRecords.participantEndpoint"),
        (Box::new(|v| v["sessions"][0]["segments"][0]["medias"] = json!([])), "sessions[0].segments[0].medias: 'medias' is not a property of the type at 'sessions[0].segments[0]'"),
        (Box::new(|v| { v.as_object_mut().unwrap().remove("id"); }), ".: missing field `id`"),
        (Box::new(|v| v["endDateTime"] = json!("2024-01-01T09:00:00Z")), "endDateTime: 2024-01-01T09:00:00Z is before startDateTime 2024-01-01T10:00:00Z"),
        (Box::new(|v| v["participants_v2"] = json!([{ "id": "a" }, { "id": "a" }])), "participants_v2[1].id: participant id 'a' appears twice"),
        (Box::new(|v| v["id"] = json!("")), "id: must not be empty"),
        (Box::new(|v| v["id"] = json!("$count")), "id: must not start with '$', which marks path words such as $count and $metadata"),
        (Box::new(|v| v["sessions"][0]["id"] = json!("Segments")), "sessions[0].id: must not be 'Segments': resource paths use segments as a navigation segment"),
        (Box::new(|v| v["sessions"][0]["segments"][0]["id"] = json!("..")), "sessions[0].segments[0].id: must not be '.' or '..', which clients remove from URL paths"),
        (Box::new(|v| v["participants_v2"][0]["id"] = json!("o'brien")), "participants_v2[0].id: must not contain parentheses or quotes, which delimit keys and function parameters in resource paths"),
        (Box::new(|v| v["sessions"][0]["segments"][0]["media"][0]["streams"][0]["streamDirection"] = json!(null)),
            "sessions[0].segments[0].media[0].streams[0].streamDirection: invalid type: null, expected a string"),
        // An object's properties in a sequence are serde's form, not JSON's: refused at any depth.
        (Box::new(|v| v["sessions"][0]["segments"][0]["media"][0]["callerNetwork"] = json!([])),
            "sessions[0].segments[0].media[0].callerNetwork: invalid type: sequence, expected struct NetworkInfo"),
        (Box::new(|v| v["sessions"][0]["caller"] = json!([])), "sessions[0].caller: invalid type: sequence, expected struct EndpointWire"),
        (Box::new(|v| v["organizer_v2"] = json!(["u1"])), "organizer_v2: invalid type: sequence, expected struct Participant"),
        (Box::new(|v| v["participants_v2"][0]["identity"]["user"] = json!([])),
            "participants_v2[0].identity.user: invalid type: sequence, expected struct Identity"),
    ];
    for (mutate, expected) in cases {
        assert_eq!(reject(mutate).to_string(), expected);
    }
}

#[test]
fn unknown_modality_is_dropped_not_fatal() {
    let mut value = minimal();
    value["modalities"] = json!(["unknown", "audio", "video"]);
    let record = parse_call_record(value.to_string().as_bytes()).unwrap();
    assert_eq!(record.modalities, vec![Modality::Audio, Modality::Video]);
}

#[test]
fn endpoint_type_is_inferred_when_missing_and_always_written() {
    let mut value = minimal();
    value["sessions"][0]["caller"] =
        json!({ "name": "pc", "userAgent": { "platform": "web", "productFamily": "teams" } });
    value["sessions"][0]["callee"] = json!({ "userAgent": { "role": "voicemail" } });
    let record = parse_call_record(value.to_string().as_bytes()).unwrap();
    let returned = serde_json::to_value(&record).unwrap();
    let session = &returned["sessions"][0];
    assert_eq!(
        session["caller"]["@odata.type"],
        "#microsoft.graph.callRecords.participantEndpoint"
    );
    assert_eq!(
        session["caller"]["userAgent"]["@odata.type"],
        "#microsoft.graph.callRecords.clientUserAgent"
    );
    assert_eq!(
        session["callee"]["@odata.type"],
        "#microsoft.graph.callRecords.endpoint"
    );
    assert_eq!(
        session["callee"]["userAgent"]["@odata.type"],
        "#microsoft.graph.callRecords.serviceUserAgent"
    );
    assert_eq!(
        session["callee"]["userAgent"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["@odata.type", "applicationVersion", "headerValue", "role"]
    );
}

#[test]
fn retired_properties_are_stored_as_graph_serves_them_now() {
    let mut record = parse_call_record(minimal().to_string().as_bytes()).unwrap();
    let now = DateTimeOffset::parse("2024-01-02T00:00:00Z").unwrap();
    record.fill_derived(now);
    assert_eq!(record.last_modified_date_time, Some(now));
    let returned = serde_json::to_value(&record).unwrap();
    assert_eq!(returned["organizer"], Value::Null);
    assert_eq!(returned["participants"], json!([]));
    assert_eq!(returned["organizer_v2"]["identity"]["user"]["displayName"], "Ann");
    assert_eq!(returned["sessions"][0]["caller"]["identity"], Value::Null);
}

#[test]
fn a_retired_endpoint_identity_moves_to_associated_identity() {
    let mut value = minimal();
    value["sessions"][0]["caller"] = json!({
        "@odata.type": "#microsoft.graph.callRecords.participantEndpoint",
        "identity": { "user": { "id": "u7", "displayName": "Cy" } },
    });
    let mut record = parse_call_record(value.to_string().as_bytes()).unwrap();
    record.fill_derived(DateTimeOffset::now());
    let returned = serde_json::to_value(&record).unwrap();
    let caller = &returned["sessions"][0]["caller"];
    assert_eq!(caller["identity"], Value::Null);
    assert_eq!(caller["associatedIdentity"]["id"], "u7");
    assert_eq!(caller["associatedIdentity"]["displayName"], "Cy");
}

#[test]
fn v2_is_derived_from_deprecated_properties() {
    let mut value = minimal();
    let object = value.as_object_mut().unwrap();
    object.remove("participants_v2");
    object.remove("organizer_v2");
    object.insert(
        "organizer".into(),
        json!({ "user": { "id": "u9", "displayName": "Bo" } }),
    );
    object.insert(
        "participants".into(),
        json!([{ "user": { "id": "u9" } }, { "phone": { "id": "+1" } }, { "user": { "id": "u8" } }]),
    );
    let mut record = parse_call_record(value.to_string().as_bytes()).unwrap();
    record.fill_derived(DateTimeOffset::now());
    let ids: Vec<_> = record.participants_v2.unwrap().into_iter().map(|p| p.id).collect();
    assert_eq!(ids, ["u9", "u8"]);
    assert_eq!(record.organizer_v2.unwrap().id, "u9");
}

#[test]
fn evolvable_members_need_the_preference() {
    let mut body = json!({ "userAgent": { "productFamily": "azureCommunicationServices", "platform": null } });
    let mut opted_in = body.clone();
    assert!(shape_for_client(&mut body, false, true));
    assert_eq!(body, json!({ "userAgent": { "productFamily": "unknownFutureValue" } }));
    assert!(shape_for_client(&mut opted_in, true, false));
    assert_eq!(opted_in["userAgent"]["productFamily"], "azureCommunicationServices");
    assert_eq!(opted_in["userAgent"]["platform"], Value::Null);
}

/// Every property the CSDL declares on a type we serialize appears in our JSON, and no other.
#[test]
fn serialized_property_names_match_the_csdl() {
    let record = parse_call_record(include_str!("testdata/get_1_0.json").as_bytes()).unwrap();
    let mut returned = serde_json::to_value(&record).unwrap();
    let session = returned["sessions"][0].take();
    let segment = session["segments"][0].clone();
    let media = segment["media"][0].clone();
    let checks: Vec<(&str, Value)> = vec![
        ("session", session.clone()),
        ("segment", segment.clone()),
        ("participantEndpoint", session["caller"].clone()),
        ("clientUserAgent", session["caller"]["userAgent"].clone()),
        ("media", media.clone()),
        ("mediaStream", media["streams"][0].clone()),
        ("networkInfo", media["callerNetwork"].clone()),
        ("deviceInfo", media["callerDevice"].clone()),
    ];
    for (type_name, value) in checks {
        let mut declared = csdl_properties(type_name);
        declared.sort();
        let mut written: Vec<String> = value
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| !k.starts_with('@'))
            .cloned()
            .collect();
        if type_name == "session" {
            written.retain(|k| k != "segments");
            declared.retain(|k| k != "segments");
        }
        written.sort();
        assert_eq!(written, declared, "{type_name}");
    }
}

/// The property names of a CSDL type, with those of its base types.
fn csdl_properties(type_name: &str) -> Vec<String> {
    let start = CSDL
        .find(&format!("Type Name=\"{type_name}\""))
        .unwrap_or_else(|| panic!("{type_name} not in the CSDL"));
    let header_end = start + CSDL[start..].find('>').unwrap();
    let header = &CSDL[start..header_end];
    let end = start + CSDL[start..].find("Type>").unwrap();
    let body = &CSDL[start..end];
    let mut names: Vec<String> = body
        .split("Property Name=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect();
    if let Some(base) = header.split("BaseType=\"").nth(1) {
        let base = base.split('"').next().unwrap();
        if let Some(local) = base.strip_prefix("microsoft.graph.callRecords.") {
            names.extend(csdl_properties(local));
        }
    }
    if CSDL[..start].ends_with("Entity") && !names.iter().any(|n| n == "id") {
        names.push("id".to_owned());
    }
    names
}

/// The API serves a stored session document verbatim when segments are expanded, relying on
/// `segments` being its last member (api::call_records::render_session).
#[test]
fn segments_are_the_last_member_of_a_session_document() {
    let (_, example) = SEED_EXAMPLES.iter().find(|(name, _)| *name == "get_1_0").unwrap();
    let record = parse_call_record(example.as_bytes()).unwrap();
    let sessions = record.sessions.expect("the expanded get example carries sessions");
    assert!(!sessions.is_empty());
    for session in sessions {
        let document: Value = serde_json::from_str(&to_json(&session)).unwrap();
        let last = document.as_object().unwrap().keys().next_back().unwrap().clone();
        assert_eq!(last, "segments");
    }
}
