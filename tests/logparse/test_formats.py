"""Format quirks across GitLab versions and deployments, one line at a time."""

import pytest

import logparse


def one(line: bytes, log_type: str | None = None) -> logparse.GroupStats:
    chunk = logparse.parse_chunk(line + b"\n", log_type=log_type)
    assert chunk.bad_lines == {}, chunk.samples
    (group,) = chunk.groups
    return group


@pytest.mark.parametrize(
    ("line", "log_type", "key", "duration_ms"),
    [
        (b'{"controller":"A","action":"b","duration_s":0.25}', "production_json", "A#b", 250.0),
        (b'{"controller":"A","action":"b","duration":250.0,"db":1}', "production_json", "A#b", 250.0),
        (b'{"route":"/api/:version/x","method":"GET","duration_s":0.5}', "api_json", "GET /api/:version/x", 500.0),
        (b'{"route":"/api/:version/x","duration":12.5}', "api_json", "/api/:version/x", 12.5),
        (b'{"grpc.method":"FindCommit","grpc.code":"OK","grpc.time_ms":3.5}', "gitaly", "FindCommit", 3.5),
        (b'{"class":"W","jid":"1","job_status":"done","duration":0.75}', "sidekiq", "W", 750.0),
        (b'{"class":"W","jid":"1","job_status":"done","duration_s":"0.75"}', "sidekiq", "W", 750.0),
    ],
)
def test_detection_key_and_duration_units(line: bytes, log_type: str, key: str, duration_ms: float) -> None:
    assert logparse.detect_log_type(line) == log_type
    group = one(line)
    assert (group.key, group.count) == (key, 1)
    assert group.duration_sum_ms == pytest.approx(duration_ms)


def test_praefect_lines_read_as_gitaly() -> None:
    line = (
        b'{"component":"praefect","grpc.code":"OK","grpc.method":"FindCommit","grpc.service":"gitaly.CommitService",'
        b'"grpc.time_ms":1.5,"msg":"finished unary call with code OK","virtual_storage":"default"}'
    )
    assert (one(line).key, one(line).duration_sum_ms) == ("FindCommit", 1.5)


@pytest.mark.parametrize(
    "prefix",
    [
        b"",
        b"2019-06-17_17:20:03.46097 ",
        b"gitlab-webservice-default-7d9c ",
        b"2023-11-23T08:49:02.604Z ",
        b"[pod/gitlab-webservice-default-7d9c/webservice] ",
    ],
)
def test_prefixes_before_the_json(prefix: bytes) -> None:
    line = prefix + b'{"controller":"A","action":"b","duration_s":1,"time":"2020-01-01T00:00:30Z"}'
    group = one(line)
    assert (group.key, group.bucket_start) == ("A#b", 1577836800)


def test_svlogd_prefix_time_is_used_when_the_line_has_none() -> None:
    group = one(b'2020-01-01_00:01:05.5 {"class":"W","jid":"1","job_status":"done","duration_s":1}')
    assert group.bucket_start == 1577836860


@pytest.mark.parametrize(
    ("time", "bucket"),
    [
        (b'"2020-01-01T00:00:59.999Z"', 1577836800),
        (b"1577836861.5", 1577836860),
        (b'"2020-01-01T01:01:00+01:00"', 1577836860),
        (b"0", 0),  # the first instant accepted, 1970-01-01T00:00:00Z
        (b'"9999-12-31T23:59:59.999Z"', 253402300740),  # the last minute accepted
    ],
)
def test_iso_and_float_epoch_times(time: bytes, bucket: int) -> None:
    assert one(b'{"controller":"A","action":"b","duration_s":1,"time":%s}' % time).bucket_start == bucket


PRODUCTION = b'"controller":"A","action":"b","duration_s":1'
GITALY_TEXT = b"grpc.method=A grpc.code=OK grpc.time_ms=1"


@pytest.mark.parametrize(
    ("line", "log_type"),
    [
        (b'{%s,"time":1e15}' % PRODUCTION, "production_json"),  # a float epoch in the year ~31.7 million
        (b'{%s,"time":253402300800}' % PRODUCTION, "production_json"),  # 10000-01-01T00:00:00Z
        (b'{%s,"time":-0.5}' % PRODUCTION, "production_json"),
        (b'{%s,"time":"1969-12-31T23:59:59.999Z"}' % PRODUCTION, "production_json"),
        (b'{%s,"time":"9999-12-31T23:30:00-01:00"}' % PRODUCTION, "production_json"),  # 10000-01-01 in UTC
        (b"0001-01-01_00:00:00.00000 {%s}" % PRODUCTION, "production_json"),  # svlogd -tt prefix
        (b"1960-01-01T00:00:00Z pod container {%s}" % PRODUCTION, "production_json"),  # KubeSOS prefix
        (b"0001-01-01_00:00:00.00000 %s" % GITALY_TEXT, "gitaly"),  # svlogd prefix before logfmt
        (b'time="1900-01-01T00:00:00Z" %s' % GITALY_TEXT, "gitaly"),  # logfmt's own time
    ],
)
def test_times_before_1970_or_past_9999_are_bad_lines(line: bytes, log_type: str) -> None:
    chunk = logparse.parse_chunk(line + b"\n", log_type=log_type)
    assert (chunk.lines, chunk.bad_lines, chunk.groups) == (1, {"time_out_of_range": 1}, [])
    assert (chunk.start_time, chunk.end_time) == (None, None)
    assert [reason for reason, _ in chunk.samples] == ["time_out_of_range"]


def test_a_prefix_time_out_of_range_is_not_used_when_the_line_has_its_own() -> None:
    group = one(b'0001-01-01_00:00:00.0 {%s,"time":"2020-01-01T00:00:30Z"}' % PRODUCTION)
    assert group.bucket_start == 1577836800


def test_helm_lines_of_other_subcomponents_are_skipped() -> None:
    data = (
        b'{"subcomponent":"api_json","route":"/r","duration_s":1}\n'
        b'{"subcomponent":"production_json","controller":"A","action":"b","duration_s":1}\n'
        b'{"subcomponent":"application_json","message":"hello"}\n'
    )
    chunk = logparse.parse_chunk(data, log_type="api_json")
    assert (sum(g.count for g in chunk.groups), chunk.skipped) == (1, {"other_log_type": 2})


def test_a_helm_stdout_without_a_log_type_counts_each_line_under_its_own_type() -> None:
    prod = b'{"subcomponent":"production_json","controller":"A","action":"b","duration_s":1}\n'
    api = b'{"subcomponent":"api_json","route":"/r","method":"GET","duration_s":1}\n'
    other = b'{"subcomponent":"application_json","message":"hello"}\n'
    chunk = logparse.parse_chunk(prod * 6 + api * 4 + other)
    assert (chunk.log_type, chunk.lines, chunk.bad_lines) == ("production_json", 11, {})
    assert [(t, lines) for t, lines, _, _ in chunk.by_type] == [("production_json", 7), ("api_json", 4)]
    assert chunk.skipped == {"other_log_type": 1}  # a subcomponent none of the four: not a request of theirs
    counted = {t: [(g.key, g.count) for g in chunk.groups_of(t)] for t in ("production_json", "api_json")}
    assert counted == {"production_json": [("A#b", 6)], "api_json": [("GET /r", 4)]}
    # Named by the uploader, one type is counted and the others' lines are skipped, by reason.
    named = logparse.parse_chunk(prod * 6 + api * 4, log_type="api_json")
    assert (named.by_type, named.skipped) == ([("api_json", 10, None, None)], {"other_log_type": 6})


@pytest.mark.parametrize("time", [b'"2024-05-01 13:00:30 UTC"', b'"yesterday"', b'""', b"true", b"{}"])
def test_a_time_present_but_unreadable_is_a_bad_line(time: bytes) -> None:
    chunk = logparse.parse_chunk(b'{"controller":"A","action":"b","duration_s":1,"time":%s}\n' % time)
    assert (chunk.lines, chunk.bad_lines, chunk.groups) == (1, {"bad_time": 1}, [])


@pytest.mark.parametrize(
    "time",
    [  # as GitLab writes them: Rails' iso8601(3), Gitaly's RFC 3339 (with an offset, or nanoseconds), epoch seconds
        b'"2024-05-01T13:00:30.123Z"', b'"2024-05-01T15:00:30+02:00"', b'"2024-05-01T13:00:30.123456789Z"',
        b"1714568430.5",
    ],
)  # fmt: skip
def test_real_time_formats_are_read(time: bytes) -> None:
    group = one(b'{"controller":"A","action":"b","duration_s":1,"time":%s}' % time)
    assert group.bucket_start == 1714568400


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"plain text", "not_json"),
        (b'{"controller":"A",', "invalid_json"),
        (b'{"controller":"A","action":"b","duration_s":1,"username":"\xff"}', "not_utf8"),
        (b'{"controller":null,"action":"b","duration_s":1}', "missing_key"),
        (b'{"controller":"A","action":"b"}', "missing_duration"),
        (b'{"controller":"A","action":"b","duration_s":-5}', "negative_duration"),
        (b'{"controller":"A","action":"b","duration":-0.5}', "negative_duration"),
        (b'{"controller":"A","action":"b","duration_s":[1]}', "wrong_type"),
        (b'{"controller":7,"action":"b","duration_s":1}', "wrong_type"),
        (b'{"controller":"A","controller":"B","duration_s":1}', "wrong_type"),
        (b'{"controller":"' + b"x" * (1 << 20) + b'","duration_s":1}', "too_long"),
    ],
)
def test_bad_lines_by_reason(line: bytes, reason: str) -> None:
    chunk = logparse.parse_chunk(line, log_type="production_json")
    assert (chunk.lines, chunk.bad_lines, chunk.groups) == (1, {reason: 1}, [])
    ((sample_reason, sample),) = chunk.samples
    assert sample_reason == reason
    assert len(sample) <= 301
