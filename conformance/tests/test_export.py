"""Exports read by the tools analysts use.

`callrecords export` writes the suite's store (the conformance tenant's records and usage-log rows)
as Parquet; pyarrow and DuckDB read the files, and their row counts, column types and values are
checked against what the API serves for the same records: each stream's keys, endpoints, network
and metrics against the expanded record, its CQD classification against /analytics/quality, each
session and record against their resources, the PSTN and Direct Routing rows against the rows sent.
`GET /export/...` answers the same bytes, and its NDJSON records are the API's expanded records.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import urllib.parse
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import TENANT
from support import get_json, http

EXPAND = "$expand=sessions($expand=segments)"


def export(server, tmp_path: Path, what: str, fmt: str = "parquet", *extra: str) -> Path:
    path = tmp_path / f"{what}.{fmt}"
    r = subprocess.run([str(server.binary), "export", "--db", server.db_url, "--tenant", TENANT, "--what", what,
                        "--format", fmt, "-o", str(path), *extra], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"export {what} as {fmt}: {r.stderr}"
    return path


def iso_duration_ms(text):
    """Graph's PT…S durations (the generator and the handcrafted record use seconds only)."""
    if text is None:
        return None
    assert text.startswith("PT") and text.endswith("S"), text
    return float(Decimal(text[2:-1]) * 1000)


def instant(text):
    """An ISO 8601 instant as pyarrow returns a timestamp[us, UTC]: truncated to the microsecond."""
    if text is None:
        return None
    head, _, rest = text.partition(".")
    fraction = "".join(ch for ch in rest if ch.isdigit())[:6].ljust(6, "0") if rest else "000000"
    value = dt.datetime.fromisoformat(head.replace("Z", "") + "+00:00")
    return value.replace(microsecond=int(fraction))


def number(value):
    if value is None:
        return None
    if isinstance(value, str):
        return {"NaN": math.nan, "INF": math.inf, "-INF": -math.inf}[value]
    return float(value)


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b or abs(a - b) <= 1e-6 * max(abs(a), abs(b))
    return a == b


def strip_annotations(value):
    """The API's answer without the @odata.context and nextLink annotations an export leaves out."""
    if isinstance(value, dict):
        return {k: strip_annotations(v) for k, v in value.items()
                if not (k.endswith("@odata.context") or k.endswith("@odata.nextLink"))}
    if isinstance(value, list):
        return [strip_annotations(v) for v in value]
    return value


# An export keeps every enum member as stored: what the API serves to a client that asks for the
# members added after an enum was published (without it they read unknownFutureValue).
ALL_MEMBERS = {"Prefer": "include-unknown-enum-members"}


def full_record(server, record_id: str) -> dict:
    """A record with every page of its sessions (segments inline) and participants merged in."""
    path = f"/communications/callRecords/{urllib.parse.quote(record_id)}"
    record = get_json(server.url(f"{path}?$expand=sessions($expand=segments),participants_v2"), ALL_MEMBERS)
    for name in ("sessions", "participants_v2"):
        link = record.get(f"{name}@odata.nextLink")
        while link:
            page = get_json(link, ALL_MEMBERS)
            record[name].extend(page["value"])
            link = page.get("@odata.nextLink")
    return strip_annotations(record)


@pytest.fixture(scope="module")
def records(server) -> list[dict]:
    """Every record of the tenant, whole, in the export's order (start time, then id)."""
    ids = []
    link = server.url("/communications/callRecords?$select=id,startDateTime")
    while link:
        page = get_json(link)
        ids.extend((item["startDateTime"], item["id"]) for item in page["value"])
        link = page.get("@odata.nextLink")
    ordered = sorted(ids, key=lambda pair: (instant(pair[0]), pair[1]))
    return [full_record(server, record_id) for _, record_id in ordered]


@pytest.fixture(scope="module")
def exports(server, records, tmp_path_factory) -> dict[str, Path]:
    # `records` first: the files are written after the API was read, and nothing changes between.
    tmp = tmp_path_factory.mktemp("exports")
    return {what: export(server, tmp, what) for what in
            ("streams", "sessions", "records", "pstnCalls", "directRoutingCalls")}


def expected_streams(records: list[dict]) -> list[dict]:
    rows = []
    for record in records:
        for session in record["sessions"]:
            for segment in session.get("segments") or []:
                for media in segment.get("media") or []:
                    for stream in media.get("streams") or []:
                        rows.append(dict(record=record, session=session, segment=segment, media=media,
                                         stream=stream))
    return rows


def test_streams_parquet_has_a_typed_row_for_every_stream_the_api_serves(exports, records):
    table = pq.read_table(exports["streams"])
    expected = expected_streams(records)
    assert table.num_rows == len(expected) > 1000
    schema = table.schema
    assert schema.field("CallStartDateTime").type == pa.timestamp("us", tz="UTC")
    assert schema.field("StreamStartDateTime").type == pa.timestamp("us", tz="UTC")
    assert schema.field("AverageJitterMs").type == pa.float64()
    assert schema.field("AveragePacketLossRate").type == pa.float64()
    assert schema.field("CallerPort").type == pa.int64()
    assert schema.field("WasMediaBypassed").type == pa.bool_()
    assert schema.field("Classification").type == pa.string()
    assert len(schema) > 150
    metadata = pq.ParquetFile(exports["streams"]).metadata
    assert metadata.row_group(0).column(0).compression == "ZSTD"

    rows = table.to_pylist()
    checked = 0
    for row, want in zip(rows, expected):
        record, session, segment, media, stream = (want[k] for k in ("record", "session", "segment", "media", "stream"))
        caller_network = media.get("callerNetwork") or {}
        callee_device = media.get("calleeDevice") or {}
        caller = segment.get("caller") or {}
        pairs = {
            "CallId": record["id"],
            "CallType": record["type"],
            "CallStartDateTime": instant(record["startDateTime"]),
            "SessionId": session["id"],
            "SegmentId": segment["id"],
            "SegmentStartDateTime": instant(segment["startDateTime"]),
            "MediaLabel": media.get("label"),
            "StreamId": stream.get("streamId"),
            "StreamDirection": stream["streamDirection"],
            "StreamStartDateTime": instant(stream.get("startDateTime")),
            "AverageJitterMs": iso_duration_ms(stream.get("averageJitter")),
            "MaxRoundTripTimeMs": iso_duration_ms(stream.get("maxRoundTripTime")),
            "AveragePacketLossRate": number(stream.get("averagePacketLossRate")),
            "AverageAudioDegradation": number(stream.get("averageAudioDegradation")),
            "AverageBandwidthEstimate": stream.get("averageBandwidthEstimate"),
            "WasMediaBypassed": stream.get("wasMediaBypassed"),
            "AudioCodec": stream.get("audioCodec"),
            "CallerSubnet": caller_network.get("subnet"),
            "CallerConnectionType": caller_network.get("connectionType"),
            "CallerPort": caller_network.get("port"),
            "CallerWifiBand": caller_network.get("wifiBand"),
            "CallerUserAgentPlatform": (caller.get("userAgent") or {}).get("platform"),
            "CallerEndpointType": (caller.get("@odata.type") or "").rsplit(".", 1)[-1] or None,
            "CalleeMicGlitchRate": number(callee_device.get("micGlitchRate")),
            "CalleeRenderDeviceName": callee_device.get("renderDeviceName"),
        }
        for column, value in pairs.items():
            assert same(row[column], value), f"{column} of {record['id']}/{segment['id']}: {row[column]!r} != {value!r}"
        checked += 1
    assert checked == len(expected)
    labelled = {"main-audio": "audio", "main-video": "video", "applicationsharing-video": "vbss"}
    for row in rows:
        media_type = labelled.get(row["MediaLabel"])
        assert row["MediaType"] == media_type
        assert (row["Classification"] is None) == (media_type is None)


def test_duckdb_reads_the_streams_as_cqd_counts_them(server, exports):
    path = str(exports["streams"])
    types = dict(duckdb.sql(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM '{path}')").fetchall())
    assert types["CallStartDateTime"] == "TIMESTAMP WITH TIME ZONE"
    assert types["AverageRoundTripTimeMs"] == "DOUBLE"
    assert types["CallerWifiChannel"] == "BIGINT"
    assert types["IsConference"] == "BOOLEAN"
    assert types["CallerSubnet"] == "VARCHAR"

    counts = duckdb.sql(f"""
        SELECT MediaType,
               count(*) FILTER (WHERE Classification = 'good') AS good,
               count(*) FILTER (WHERE Classification = 'poor') AS poor,
               count(*) FILTER (WHERE Classification = 'unclassified') AS unclassified
        FROM '{path}' WHERE MediaType IS NOT NULL GROUP BY MediaType ORDER BY MediaType""").fetchall()
    # As microseconds: a TIMESTAMP WITH TIME ZONE handed to Python would need pytz.
    first, last = duckdb.sql(
        f"SELECT epoch_us(min(SegmentStartDateTime)), epoch_us(max(SegmentStartDateTime)) FROM '{path}'").fetchall()[0]
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    start = (epoch + dt.timedelta(microseconds=first, days=-1)).strftime("%Y-%m-%dT00:00:00Z")
    end = (epoch + dt.timedelta(microseconds=last, days=2)).strftime("%Y-%m-%dT00:00:00Z")
    quality = get_json(server.root + f"/analytics/quality?fromDateTime={start}&toDateTime={end}"
                                     "&groupBy=mediaType&defaultFilters=false")["value"]
    api = sorted((row["mediaType"], row["goodStreams"], row["poorStreams"], row["unclassifiedStreams"])
                 for row in quality)
    assert counts == api

    # The README's query: poor audio by the caller's connection type.
    by_connection = duckdb.sql(f"""
        SELECT CallerConnectionType AS connection,
               count(*) FILTER (WHERE Classification = 'poor') AS poor,
               count(*) FILTER (WHERE Classification IN ('good', 'poor')) AS classified,
               round(100.0 * poor / classified, 1) AS poor_percent
        FROM '{path}'
        WHERE MediaType = 'audio' AND NOT ExcludedByDefaultFilters
        GROUP BY connection ORDER BY poor_percent DESC""").fetchall()
    table = pq.read_table(exports["streams"]).to_pylist()
    for connection, poor, classified, _ in by_connection:
        mine = [r for r in table if r["MediaType"] == "audio" and not r["ExcludedByDefaultFilters"]
                and r["CallerConnectionType"] == connection]
        assert poor == sum(r["Classification"] == "poor" for r in mine)
        assert classified == sum(r["Classification"] in ("good", "poor") for r in mine)
    assert sum(row[2] for row in by_connection) > 0


def test_sessions_and_records_parquet_match_their_resources(exports, records):
    sessions = pq.read_table(exports["sessions"]).to_pylist()
    expected = [(record, session) for record in records for session in record["sessions"]]
    assert len(sessions) == len(expected)
    for row, (record, session) in zip(sessions, expected):
        assert row["CallId"] == record["id"]
        assert row["SessionId"] == session["id"]
        assert row["SessionStartDateTime"] == instant(session["startDateTime"])
        assert row["Modalities"] == ",".join(session.get("modalities") or [])
        assert row["SegmentCount"] == len(session.get("segments") or [])
        assert row["FailureStage"] == (session.get("failureInfo") or {}).get("stage")
        assert row["CallerUserAgentPlatform"] == ((session.get("caller") or {}).get("userAgent") or {}).get("platform")
        assert row["Outcome"] in ("completed", "setupFailed", "dropped")

    table = pq.read_table(exports["records"])
    assert table.schema.field("CallDurationMs").type == pa.int64()
    rows = table.to_pylist()
    assert [row["CallId"] for row in rows] == [record["id"] for record in records]
    for row, record in zip(rows, records):
        assert row["CallVersion"] == record["version"]
        assert row["SessionCount"] == len(record["sessions"])
        assert row["ParticipantCount"] == len(record["participants_v2"])
        assert row["Modalities"] == ",".join(record["modalities"])
        assert row["CallEndDateTime"] == instant(record["endDateTime"])
        organizer = record.get("organizer_v2") or {}
        assert row["OrganizerId"] == organizer.get("id")
        assert row["LastModifiedDateTime"] == instant(record.get("lastModifiedDateTime"))
    big = max(records, key=lambda record: len(record["sessions"]))
    assert len(big["sessions"]) > 60


def test_pstn_and_direct_routing_rows_are_the_rows_sent(server, exports):
    usage = server.usage
    for what, sent in (("pstnCalls", usage.pstn), ("directRoutingCalls", usage.direct)):
        table = pq.read_table(exports[what])
        assert table.schema.field("StartDateTime").type == pa.timestamp("us", tz="UTC")
        assert table.schema.field("DurationSeconds").type == pa.int64()
        rows = {row["Id"]: row for row in table.to_pylist()}
        assert len(rows) == table.num_rows >= len(sent)
        for row in sent:
            got = rows[row["id"]]
            assert got["StartDateTime"] == instant(row["startDateTime"]), row["id"]
            assert got["DurationSeconds"] == row.get("duration")
            assert got["UserPrincipalName"] == row.get("userPrincipalName")
            if what == "pstnCalls":
                # Exact decimals, as sent (the suite keeps the amounts it sent as Decimal).
                assert table.schema.field("Charge").type == pa.decimal128(38, 6)
                assert got["Charge"] == row.get("charge") and got["ConnectionCharge"] == row.get("connectionCharge")
            else:
                assert got["SuccessfulCall"] == row.get("successfulCall")
                assert got["FinalSipCode"] == row.get("finalSipCode")


def test_http_exports_the_same_bytes_and_records_as_the_api_serves_them(server, exports, records, tmp_path):
    response = http("GET", server.root + "/export/streams?format=parquet", timeout=600)
    assert response.status == 200, response.body[:500]
    assert response.headers.get("Content-Type") == "application/vnd.apache.parquet"
    # The same bytes (Table.equals would not do: NaN is not equal to itself).
    assert response.body == exports["streams"].read_bytes()
    assert pq.read_table(pa.BufferReader(response.body)).num_rows > 1000

    response = http("GET", server.root + "/export/records", timeout=600)
    assert response.status == 200
    assert response.headers.get("Content-Type") == "application/x-ndjson"
    lines = [json.loads(line) for line in response.body.decode().splitlines()]
    assert [line["id"] for line in lines] == [record["id"] for record in records]
    for line, record in zip(lines, records):
        if line != record:
            def first_difference(a, b, path="$"):
                if type(a) is not type(b):
                    return f"{path}: {a!r:.300} != {b!r:.300}"
                if isinstance(a, dict):
                    for key in sorted(set(a) | set(b)):
                        if key not in a or key not in b:
                            return f"{path}.{key}: only in {'the export' if key in a else 'the API'}"
                        found = first_difference(a[key], b[key], f"{path}.{key}")
                        if found:
                            return found
                    return None
                if isinstance(a, list):
                    if len(a) != len(b):
                        return f"{path}: {len(a)} items != {len(b)}"
                    for i, (x, y) in enumerate(zip(a, b)):
                        found = first_difference(x, y, f"{path}[{i}]")
                        if found:
                            return found
                    return None
                return None if a == b else f"{path}: {a!r:.300} != {b!r:.300}"
            pytest.fail(f"{record['id']}: the export differs from the API's expanded record at "
                        f"{first_difference(line, record)}")

    cli = export(server, tmp_path, "records", "ndjson")
    assert cli.read_bytes() == response.body

    bad = http("GET", server.root + "/export/streams?format=csv")
    assert bad.status == 400 and bad.json()["error"]["code"] == "BadRequest"
