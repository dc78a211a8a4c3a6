//! The four GitLab JSON log formats: which fields a line carries, how to recognise the format, and how one
//! line becomes a [`Record`] (or the reason it does not).
use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::sketch::MAX_VALUE;
use crate::time::{in_range, parse_iso};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogType {
    ProductionJson,
    ApiJson,
    Gitaly,
    Sidekiq,
}

impl LogType {
    pub const ALL: [LogType; 4] = [
        LogType::ProductionJson,
        LogType::ApiJson,
        LogType::Gitaly,
        LogType::Sidekiq,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LogType::ProductionJson => "production_json",
            LogType::ApiJson => "api_json",
            LogType::Gitaly => "gitaly",
            LogType::Sidekiq => "sidekiq",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == s)
    }
}

/// Component times a record may carry, in this order in [`Record::components`].
pub const COMPONENTS: [&str; 5] = ["db", "gitaly", "redis", "cpu", "queue"];
/// Dimensions the `top` view ranks, in this order in [`Record::dims`].
pub const DIMENSIONS: [&str; 4] = ["user", "project", "client", "path"];

/// A JSON value as far as we care: any type is accepted so that one odd field never fails the whole line.
#[derive(Debug, Default, Clone, PartialEq)]
pub enum Val<'a> {
    #[default]
    Missing,
    Null,
    Num(f64),
    Str(Cow<'a, str>),
    Other,
}

/// The field holds a value of a type that cannot mean what the field means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongType;

impl Val<'_> {
    fn present(&self) -> bool {
        !matches!(self, Val::Missing | Val::Null)
    }

    /// A finite number, also from a numeric string; `None` when missing or null.
    fn num(&self) -> Result<Option<f64>, WrongType> {
        let v = match self {
            Val::Missing | Val::Null => return Ok(None),
            Val::Num(v) => *v,
            Val::Str(s) => s.trim().parse::<f64>().map_err(|_| WrongType)?,
            Val::Other => return Err(WrongType),
        };
        if v.is_finite() {
            Ok(Some(v))
        } else {
            Err(WrongType)
        }
    }

    fn str(&self) -> Result<Option<&str>, WrongType> {
        match self {
            Val::Missing | Val::Null => Ok(None),
            Val::Str(s) => Ok(Some(s)),
            Val::Num(_) | Val::Other => Err(WrongType),
        }
    }

    /// A string for display: strings as they are, anything else as absent.
    fn text(&self) -> Option<&str> {
        self.str().ok().flatten().filter(|s| !s.is_empty())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Val<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValVisitor(std::marker::PhantomData))
    }
}

struct ValVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ValVisitor<'a> {
    type Value = Val<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Val<'a>, E> {
        Ok(Val::Other)
    }
    fn visit_i64<E>(self, v: i64) -> Result<Val<'a>, E> {
        Ok(Val::Num(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Val<'a>, E> {
        Ok(Val::Num(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Val<'a>, E> {
        Ok(Val::Num(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Val<'a>, E> {
        Ok(Val::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Val<'a>, E> {
        Ok(Val::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Val<'a>, E> {
        Ok(Val::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Val<'a>, E> {
        Ok(Val::Null)
    }
    fn visit_none<E>(self) -> Result<Val<'a>, E> {
        Ok(Val::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Val<'a>, A::Error> {
        while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Val::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Val<'a>, A::Error> {
        while s.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Val::Other)
    }
}

/// Every field of any format that we read; the rest are skipped by serde without allocation.
#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(default)]
pub struct Line<'a> {
    #[serde(borrow)]
    time: Val<'a>,
    #[serde(borrow)]
    subcomponent: Val<'a>,
    // production_json / api_json
    #[serde(borrow)]
    controller: Val<'a>,
    #[serde(borrow)]
    action: Val<'a>,
    #[serde(borrow)]
    route: Val<'a>,
    #[serde(borrow)]
    method: Val<'a>,
    #[serde(borrow)]
    path: Val<'a>,
    #[serde(borrow)]
    status: Val<'a>,
    #[serde(borrow, rename = "exception.class")]
    exception_class: Val<'a>,
    // Durations: `*_s` in seconds since GitLab 13.0, bare names in ms before (seconds for Sidekiq).
    #[serde(borrow)]
    duration_s: Val<'a>,
    #[serde(borrow)]
    duration: Val<'a>,
    #[serde(borrow)]
    db_duration_s: Val<'a>,
    #[serde(borrow)]
    db: Val<'a>,
    #[serde(borrow)]
    db_duration: Val<'a>,
    #[serde(borrow)]
    gitaly_duration_s: Val<'a>,
    #[serde(borrow)]
    gitaly_duration: Val<'a>,
    #[serde(borrow)]
    redis_duration_s: Val<'a>,
    #[serde(borrow)]
    redis_duration_ms: Val<'a>,
    #[serde(borrow)]
    cpu_s: Val<'a>,
    #[serde(borrow)]
    queue_duration_s: Val<'a>,
    #[serde(borrow)]
    queue_duration: Val<'a>,
    // Sidekiq
    #[serde(borrow)]
    class: Val<'a>,
    #[serde(borrow)]
    job_status: Val<'a>,
    #[serde(borrow)]
    jid: Val<'a>,
    #[serde(borrow)]
    scheduling_latency_s: Val<'a>,
    #[serde(borrow)]
    error_class: Val<'a>,
    // Gitaly
    #[serde(borrow, rename = "grpc.method")]
    grpc_method: Val<'a>,
    #[serde(borrow, rename = "grpc.code")]
    grpc_code: Val<'a>,
    #[serde(borrow, rename = "grpc.time_ms")]
    grpc_time_ms: Val<'a>,
    #[serde(borrow, rename = "command.cpu_time_ms")]
    command_cpu_time_ms: Val<'a>,
    #[serde(borrow, rename = "grpc.request.glProjectPath")]
    gl_project_path: Val<'a>,
    // Who and what, for `top`.
    #[serde(borrow)]
    username: Val<'a>,
    #[serde(borrow, rename = "meta.user")]
    meta_user: Val<'a>,
    #[serde(borrow, rename = "meta.project")]
    meta_project: Val<'a>,
    #[serde(borrow)]
    remote_ip: Val<'a>,
    #[serde(borrow, rename = "meta.remote_ip")]
    meta_remote_ip: Val<'a>,
    #[serde(borrow, rename = "meta.client_id")]
    meta_client_id: Val<'a>,
    #[serde(borrow)]
    correlation_id: Val<'a>,
    // Bytes allocated while serving the request or job (Rails, API and Sidekiq), for `top`.
    #[serde(borrow)]
    mem_bytes: Val<'a>,
}

impl<'a> Line<'a> {
    /// The field a JSON key fills, for the fast scanner; must name exactly the fields serde fills.
    pub(crate) fn slot(&mut self, key: &str) -> Option<&mut Val<'a>> {
        let key = key.as_bytes();
        // Dispatch on length first: a flat match compares the key against every name in turn.
        Some(match key.len() {
            2 => match key {
                b"db" => &mut self.db,
                _ => return None,
            },
            3 => match key {
                b"jid" => &mut self.jid,
                _ => return None,
            },
            4 => match key {
                b"time" => &mut self.time,
                b"path" => &mut self.path,
                _ => return None,
            },
            5 => match key {
                b"route" => &mut self.route,
                b"cpu_s" => &mut self.cpu_s,
                b"class" => &mut self.class,
                _ => return None,
            },
            6 => match key {
                b"action" => &mut self.action,
                b"method" => &mut self.method,
                b"status" => &mut self.status,
                _ => return None,
            },
            8 => match key {
                b"duration" => &mut self.duration,
                b"username" => &mut self.username,
                _ => return None,
            },
            9 => match key {
                b"grpc.code" => &mut self.grpc_code,
                b"meta.user" => &mut self.meta_user,
                b"remote_ip" => &mut self.remote_ip,
                b"mem_bytes" => &mut self.mem_bytes,
                _ => return None,
            },
            10 => match key {
                b"controller" => &mut self.controller,
                b"duration_s" => &mut self.duration_s,
                b"job_status" => &mut self.job_status,
                _ => return None,
            },
            11 => match key {
                b"db_duration" => &mut self.db_duration,
                b"error_class" => &mut self.error_class,
                b"grpc.method" => &mut self.grpc_method,
                _ => return None,
            },
            12 => match key {
                b"subcomponent" => &mut self.subcomponent,
                b"grpc.time_ms" => &mut self.grpc_time_ms,
                b"meta.project" => &mut self.meta_project,
                _ => return None,
            },
            13 => match key {
                b"db_duration_s" => &mut self.db_duration_s,
                _ => return None,
            },
            14 => match key {
                b"correlation_id" => &mut self.correlation_id,
                b"queue_duration" => &mut self.queue_duration,
                b"meta.remote_ip" => &mut self.meta_remote_ip,
                b"meta.client_id" => &mut self.meta_client_id,
                _ => return None,
            },
            15 => match key {
                b"exception.class" => &mut self.exception_class,
                b"gitaly_duration" => &mut self.gitaly_duration,
                _ => return None,
            },
            16 => match key {
                b"redis_duration_s" => &mut self.redis_duration_s,
                b"queue_duration_s" => &mut self.queue_duration_s,
                _ => return None,
            },
            17 => match key {
                b"gitaly_duration_s" => &mut self.gitaly_duration_s,
                b"redis_duration_ms" => &mut self.redis_duration_ms,
                _ => return None,
            },
            19 => match key {
                b"command.cpu_time_ms" => &mut self.command_cpu_time_ms,
                _ => return None,
            },
            20 => match key {
                b"scheduling_latency_s" => &mut self.scheduling_latency_s,
                _ => return None,
            },
            26 => match key {
                b"grpc.request.glProjectPath" => &mut self.gl_project_path,
                _ => return None,
            },
            _ => return None,
        })
    }
}

/// What made a request count as failed, for the `errors` view.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure<'b> {
    Http {
        status: i64,
        exception: Option<&'b str>,
    },
    Grpc(&'b str),
    Job(Option<&'b str>),
}

impl Failure<'_> {
    pub fn label(&self) -> String {
        match self {
            Failure::Http {
                status,
                exception: Some(e),
            } => format!("{status} {e}"),
            Failure::Http {
                status,
                exception: None,
            } => status.to_string(),
            Failure::Grpc(code) => (*code).to_owned(),
            Failure::Job(class) => class.unwrap_or("(no error_class)").to_owned(),
        }
    }
}

/// One request, call or job.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'b> {
    /// The grouping key in two parts joined by `sep` (`controller#action`, `GET /api/...`); `b` may be empty.
    pub key: (&'b str, &'static str, &'b str),
    pub time: Option<f64>,
    pub duration_ms: f64,
    pub failed: bool,
    pub components: [Option<f64>; 5],
    pub dims: [Option<&'b str>; 4],
    /// Bytes allocated while serving it (`mem_bytes`), for `top`; Gitaly logs none.
    pub mem_bytes: Option<f64>,
    /// Set for failed records and for those that carry an exception.
    pub failure: Option<Failure<'b>>,
    pub correlation_id: Option<&'b str>,
}

/// Why a line yields no record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// A legitimate line that is not a request (a Sidekiq `start`, a Gitaly non-call line, another subcomponent).
    Skip(&'static str),
    /// A line that should be a request but is defective.
    Bad(&'static str),
}

/// The format a single line belongs to, if it says.
pub fn classify(l: &Line<'_>) -> Option<LogType> {
    if let Some(sub) = l.subcomponent.text() {
        return match sub {
            "production_json" => Some(LogType::ProductionJson),
            "api_json" => Some(LogType::ApiJson),
            "sidekiq" => Some(LogType::Sidekiq),
            "gitaly" => Some(LogType::Gitaly),
            _ => None,
        };
    }
    if l.grpc_method.present() || l.grpc_code.present() {
        Some(LogType::Gitaly)
    } else if l.class.present() && (l.job_status.present() || l.jid.present()) {
        Some(LogType::Sidekiq)
    } else if l.controller.present() {
        Some(LogType::ProductionJson)
    } else if l.route.present() {
        Some(LogType::ApiJson)
    } else {
        None
    }
}

fn ms(v: &Val<'_>) -> Option<f64> {
    v.num().ok().flatten()
}

fn seconds_as_ms(v: &Val<'_>) -> Option<f64> {
    ms(v).map(|s| s * 1000.0)
}

/// An optional byte count: like a component time, a value of the wrong type counts as absent, not as a bad line.
fn bytes(v: &Val<'_>) -> Option<f64> {
    v.num().ok().flatten()
}

/// A finite value within the sketch's range, either sign (NaN is not).
fn storable(v: f64) -> bool {
    v.abs() <= MAX_VALUE
}

/// Turn a parsed line into a record of `log_type`, timed by the line's own `time` or else by `prefix_time` (an
/// svlogd or KubeSOS prefix's). A negative duration is a bad line: it would drag the minimum, the percentiles and
/// the deviation below any real request. So is one above [`MAX_VALUE`] ms (~31 years, where the sketch clamps): a
/// finite `duration_s` such as 1e306 becomes infinite in ms and would turn the key's and the total's maximum,
/// percentiles and deviation into inf/NaN. So is a time out of [`in_range`]'s years: it would stretch the input's
/// span (and so every RPS) and make windows no one can date or store. A component time past [`MAX_VALUE`] is
/// dropped, as one of the wrong type is.
pub fn extract<'b>(
    l: &'b Line<'_>,
    log_type: LogType,
    prefix_time: Option<f64>,
) -> Result<Record<'b>, Rejection> {
    let mut record = extract_any(l, log_type)?;
    record.time = record.time.or(prefix_time);
    if record.duration_ms < 0.0 {
        return Err(Rejection::Bad("negative_duration"));
    }
    if !storable(record.duration_ms) {
        return Err(Rejection::Bad("duration_out_of_range"));
    }
    for v in record.components.iter_mut() {
        if v.is_some_and(|v| !storable(v)) {
            *v = None;
        }
    }
    if record.time.is_some_and(|t| !in_range(t)) {
        return Err(Rejection::Bad("time_out_of_range"));
    }
    Ok(record)
}

fn extract_any<'b>(l: &'b Line<'_>, log_type: LogType) -> Result<Record<'b>, Rejection> {
    use Rejection::{Bad, Skip};
    // A line that names another type (Helm's `subcomponent`) or shows one by its fields (a Gitaly call in a Sidekiq
    // stream, `cat`ed together) is that type's, not a bad or non-job line of this one.
    let told = classify(l);
    if told.is_some_and(|t| t != log_type) || (told.is_none() && l.subcomponent.present()) {
        return Err(Skip("other_log_type"));
    }
    let wrong = |_| Bad("wrong_type");
    // A time present but unreadable is a bad line: counted as untimed, it would fall out of every bounded range.
    let time = match &l.time {
        Val::Missing | Val::Null => None,
        Val::Str(s) => Some(parse_iso(s.trim().as_bytes()).ok_or(Bad("bad_time"))?),
        Val::Num(v) => Some(*v),
        Val::Other => return Err(Bad("bad_time")),
    };
    let user = l.username.text().or_else(|| l.meta_user.text());
    let client = l
        .remote_ip
        .text()
        .or_else(|| l.meta_remote_ip.text())
        .or_else(|| l.meta_client_id.text());
    match log_type {
        LogType::ProductionJson | LogType::ApiJson => {
            let key = if log_type == LogType::ProductionJson {
                match (
                    l.controller.str().map_err(wrong)?,
                    l.action.str().map_err(wrong)?,
                ) {
                    (Some(c), Some(a)) => (c, "#", a),
                    (Some(c), None) => (c, "", ""),
                    _ => return Err(Bad("missing_key")),
                }
            } else {
                let route = l.route.str().map_err(wrong)?.ok_or(Bad("missing_key"))?;
                match l.method.str().map_err(wrong)? {
                    Some(m) => (m, " ", route),
                    None => (route, "", ""),
                }
            };
            let duration_ms = match l.duration_s.num().map_err(wrong)? {
                Some(s) => s * 1000.0,
                None => l
                    .duration
                    .num()
                    .map_err(wrong)?
                    .ok_or(Bad("missing_duration"))?,
            };
            let status = l.status.num().map_err(wrong)?.map(|s| s as i64);
            let failed = status.is_some_and(|s| s >= 500);
            let exception = l.exception_class.text();
            let failure = (failed || exception.is_some()).then(|| Failure::Http {
                status: status.unwrap_or(0),
                exception,
            });
            Ok(Record {
                key,
                time,
                duration_ms,
                failed,
                components: [
                    seconds_as_ms(&l.db_duration_s).or_else(|| ms(&l.db)),
                    seconds_as_ms(&l.gitaly_duration_s).or_else(|| ms(&l.gitaly_duration)),
                    seconds_as_ms(&l.redis_duration_s).or_else(|| ms(&l.redis_duration_ms)),
                    seconds_as_ms(&l.cpu_s),
                    seconds_as_ms(&l.queue_duration_s).or_else(|| ms(&l.queue_duration)),
                ],
                dims: [user, l.meta_project.text(), client, l.path.text()],
                mem_bytes: bytes(&l.mem_bytes),
                failure,
                correlation_id: l.correlation_id.text(),
            })
        }
        LogType::Gitaly => {
            let (Some(method), Some(code)) = (
                l.grpc_method.str().map_err(wrong)?,
                l.grpc_code.str().map_err(wrong)?,
            ) else {
                return Err(Skip("not_a_call"));
            };
            let duration_ms = l
                .grpc_time_ms
                .num()
                .map_err(wrong)?
                .ok_or(Bad("missing_duration"))?;
            let failed = code != "OK";
            Ok(Record {
                key: (method, "", ""),
                time,
                duration_ms,
                failed,
                components: [None, None, None, ms(&l.command_cpu_time_ms), None],
                dims: [user, l.gl_project_path.text(), client, None],
                mem_bytes: None,
                failure: failed.then_some(Failure::Grpc(code)),
                correlation_id: l.correlation_id.text(),
            })
        }
        LogType::Sidekiq => {
            let failed = match l.job_status.str().map_err(wrong)? {
                Some("done") => false,
                Some("fail") => true,
                Some("start") => return Err(Skip("job_start")),
                _ => return Err(Skip("not_a_job")),
            };
            let class = l.class.str().map_err(wrong)?.ok_or(Bad("missing_key"))?;
            // Sidekiq's bare `duration` was always seconds, unlike Rails'.
            let duration_s = match l.duration_s.num().map_err(wrong)? {
                Some(s) => s,
                None => l
                    .duration
                    .num()
                    .map_err(wrong)?
                    .ok_or(Bad("missing_duration"))?,
            };
            Ok(Record {
                key: (class, "", ""),
                time,
                duration_ms: duration_s * 1000.0,
                failed,
                components: [
                    seconds_as_ms(&l.db_duration_s).or_else(|| ms(&l.db_duration)),
                    seconds_as_ms(&l.gitaly_duration_s).or_else(|| ms(&l.gitaly_duration)),
                    seconds_as_ms(&l.redis_duration_s).or_else(|| ms(&l.redis_duration_ms)),
                    seconds_as_ms(&l.cpu_s),
                    seconds_as_ms(&l.scheduling_latency_s),
                ],
                dims: [user, l.meta_project.text(), client, None],
                mem_bytes: bytes(&l.mem_bytes),
                // `error_class` before GitLab 12.5, `exception.class` since.
                failure: failed.then(|| {
                    Failure::Job(l.error_class.text().or_else(|| l.exception_class.text()))
                }),
                correlation_id: l.correlation_id.text(),
            })
        }
    }
}

/// Where the JSON object starts: bare, or after a short prefix such as an svlogd `-tt` timestamp or the
/// pod and container names KubeSOS and `kubectl logs --prefix` put first. Returns the JSON slice and the
/// time of the prefix's first token if it is one.
pub fn split_prefix(line: &[u8]) -> Option<(&[u8], Option<f64>)> {
    if line.first() == Some(&b'{') {
        return Some((line, None));
    }
    // Only a `{"` within the first 128 bytes starts a wrapped object; a brace deeper in is text, not JSON.
    let head = &line[..line.len().min(130)];
    let brace = memchr::memmem::find(head, b"{\"")?;
    let prefix = line[..brace].trim_ascii();
    if prefix.is_empty() || brace > 128 {
        return None;
    }
    let first_token = prefix.split(|&b| b == b' ').next().unwrap_or(prefix);
    Some((&line[brace..], parse_iso(first_token)))
}

/// An old text-format (logfmt) line, as Gitaly wrote before JSON logging and as `log.format = "text"` still
/// writes: `key=value key="quoted value" …`, maybe after an svlogd timestamp. Returns the line and the prefix's
/// time; `None` when it is not logfmt (fewer than two pairs, a key with a space or quote, an unclosed quote).
pub fn parse_logfmt(line: &[u8]) -> Option<(Line<'_>, Option<f64>)> {
    let text = std::str::from_utf8(line).ok()?;
    let mut rest = text.trim();
    let mut prefix_time = None;
    if let Some((first, after)) = rest.split_once(' ') {
        if !first.contains('=') {
            prefix_time = Some(parse_iso(first.as_bytes())?); // only a timestamp may come before the pairs
            rest = after.trim_start();
        }
    }
    let mut out = Line::default();
    let mut pairs = 0;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        if key.is_empty() || key.contains([' ', '"']) {
            return None;
        }
        let value;
        (value, rest) = if let Some(quoted) = after.strip_prefix('"') {
            let end = closing_quote(quoted.as_bytes())?;
            let raw = &quoted[..end];
            let v = if raw.contains('\\') {
                Cow::Owned(unescape(raw))
            } else {
                Cow::Borrowed(raw)
            };
            (v, quoted[end + 1..].trim_start())
        } else {
            let (v, more) = after.split_once(' ').unwrap_or((after, ""));
            (Cow::Borrowed(v), more.trim_start())
        };
        pairs += 1;
        if let Some(slot) = out.slot(key) {
            *slot = Val::Str(value);
        }
    }
    (pairs >= 2).then_some((out, prefix_time))
}

/// Index of the `"` that ends a quoted logfmt value (`b` starts just after the opening quote).
fn closing_quote(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Parse one JSON object into a [`Line`], naming the reason on failure.
pub fn parse_json(json: &[u8]) -> Result<Line<'_>, &'static str> {
    let mut line = Line::default();
    parse_json_into(json, &mut line).map(|()| line)
}

/// [`parse_json`] into an empty `line` the caller owns.
pub fn parse_json_into<'a>(json: &'a [u8], line: &mut Line<'a>) -> Result<(), &'static str> {
    if crate::scan::scan(json, line).is_some() {
        return Ok(());
    }
    *line = serde_json::from_slice::<Line>(json).map_err(|e| {
        if e.classify() == serde_json::error::Category::Data {
            "wrong_type"
        } else if std::str::from_utf8(json).is_err() {
            "not_utf8"
        } else {
            "invalid_json"
        }
    })?;
    Ok(())
}

/// How many lines that tell their format [`votes`] counts.
pub const DETECT_LINES: usize = 1000;

/// Lines of each format (in [`LogType::ALL`] order) among the first [`DETECT_LINES`] of `data` that tell theirs.
/// Lines that tell none (a Gitaly `finished HTTP request`, a Sidekiq non-job line) are passed over however
/// many come first: a Gitaly `current` may start with thousands of them.
pub fn votes(data: &[u8]) -> [usize; 4] {
    let mut votes = [0usize; 4];
    let mut told = 0;
    for raw in data.split(|&b| b == b'\n') {
        let line = raw.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let parsed = match split_prefix(line) {
            Some((json, _)) => parse_json(json).ok(),
            None => parse_logfmt(line).map(|(l, _)| l),
        };
        if let Some(t) = parsed.as_ref().and_then(classify) {
            votes[t as usize] += 1;
            told += 1;
            if told == DETECT_LINES {
                break;
            }
        }
    }
    votes
}

/// The formats `data` holds, by [`votes`], the most lines first (ties in [`LogType::ALL`] order).
pub fn detect_all(data: &[u8]) -> Vec<LogType> {
    let votes = votes(data);
    let mut found: Vec<LogType> = LogType::ALL
        .into_iter()
        .filter(|&t| votes[t as usize] > 0)
        .collect();
    found.sort_by_key(|&t| std::cmp::Reverse(votes[t as usize]));
    found
}

/// The format most lines at the head of `data` belong to.
pub fn detect(data: &[u8]) -> Option<LogType> {
    detect_all(data).first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(line: &str, t: LogType) -> Result<(String, f64, bool), Rejection> {
        let l = parse_json(line.as_bytes()).expect("json");
        extract(&l, t, None).map(|r| {
            (
                format!("{}{}{}", r.key.0, r.key.1, r.key.2),
                r.duration_ms,
                r.failed,
            )
        })
    }

    #[test]
    fn rails_ms_and_seconds_schemas() {
        let old = r#"{"controller":"Projects::BlobController","action":"show","status":200,"duration":2448.77,"db":21.63}"#;
        assert_eq!(
            record(old, LogType::ProductionJson),
            Ok(("Projects::BlobController#show".into(), 2448.77, false))
        );
        let new = r#"{"controller":"A","action":"b","status":"502","duration_s":0.5,"db_duration_s":null}"#;
        assert_eq!(
            record(new, LogType::ProductionJson),
            Ok(("A#b".into(), 500.0, true))
        );
    }

    #[test]
    fn mem_bytes_is_read_from_rails_api_and_sidekiq_lines_only() {
        let mem = |line: &str, t| {
            let fast = parse_json(line.as_bytes()).expect("json");
            let slow: Line = serde_json::from_slice(line.as_bytes()).expect("json");
            assert_eq!(fast, slow, "the scanner and serde fill the same fields");
            extract(&fast, t, None).map(|r| r.mem_bytes)
        };
        let rails = |m: &str| format!(r#"{{"controller":"A","duration_s":1{m}}}"#);
        let rails_mem = |m: &str| mem(&rails(m), LogType::ProductionJson);
        assert_eq!(rails_mem(r#","mem_bytes":820832"#), Ok(Some(820_832.0)));
        assert_eq!(rails_mem(r#","mem_bytes":"820832""#), Ok(Some(820_832.0)));
        // Absent, null or of the wrong type: nothing to add, and the request still counts.
        for none in [
            "",
            r#","mem_bytes":null"#,
            r#","mem_bytes":"lots""#,
            r#","mem_bytes":true"#,
            r#","mem_bytes":{}"#,
        ] {
            assert_eq!(rails_mem(none), Ok(None), "{none}");
        }
        let api = r#"{"route":"/api/:version/x","duration_s":1,"mem_bytes":5}"#;
        assert_eq!(mem(api, LogType::ApiJson), Ok(Some(5.0)));
        let job = r#"{"class":"W","jid":"1","job_status":"done","duration_s":1,"mem_bytes":7}"#;
        assert_eq!(mem(job, LogType::Sidekiq), Ok(Some(7.0)));
        let call = r#"{"grpc.method":"A","grpc.code":"OK","grpc.time_ms":1,"mem_bytes":9}"#;
        assert_eq!(mem(call, LogType::Gitaly), Ok(None));
    }

    #[test]
    fn durations_past_the_sketch_range_are_bad_lines_and_such_components_absent() {
        // 1e306 s is a finite f64, but infinite in ms.
        for d in ["1e306", "1e10"] {
            let line = format!(r#"{{"controller":"A","action":"b","duration_s":{d}}}"#);
            let bad = Err(Rejection::Bad("duration_out_of_range"));
            assert_eq!(record(&line, LogType::ProductionJson), bad, "{d}");
        }
        let line = r#"{"controller":"A","duration_s":1e9,"db_duration_s":1e306,"cpu_s":1}"#;
        let l = parse_json(line.as_bytes()).expect("json");
        let r = extract(&l, LogType::ProductionJson, None).expect("a record");
        assert_eq!(r.duration_ms, 1e12, "the largest duration kept");
        assert_eq!(r.components[0], None, "db time dropped");
        assert_eq!(r.components[3], Some(1000.0), "cpu time kept");
    }

    #[test]
    fn sidekiq_failures_name_error_class_or_exception_class() {
        let class_of = |fields: &str| {
            let line = format!(r#"{{"class":"W","job_status":"fail","duration_s":1{fields}}}"#);
            let l = parse_json(line.as_bytes()).expect("json");
            match extract(&l, LogType::Sidekiq, None).expect("a job").failure {
                Some(Failure::Job(class)) => class.map(str::to_owned),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(class_of(r#","error_class":"E""#).as_deref(), Some("E"));
        let modern = r#","exception.class":"Gitlab::Git::CommandError""#;
        assert_eq!(
            class_of(modern).as_deref(),
            Some("Gitlab::Git::CommandError")
        );
        assert_eq!(class_of(""), None);
    }

    #[test]
    fn times_out_of_range_are_bad_lines() {
        let bad = Err(Rejection::Bad("time_out_of_range"));
        let at = |time| Line {
            time,
            controller: Val::Str("A".into()),
            duration_s: Val::Num(1.0),
            ..Line::default()
        };
        let time_of =
            |l: &Line<'_>, prefix| extract(l, LogType::ProductionJson, prefix).map(|r| r.time);
        for t in [f64::NAN, f64::INFINITY, -1.0, 1e15] {
            assert_eq!(time_of(&at(Val::Num(t)), None), bad, "{t}");
        }
        // A prefix's time stands in for a missing one only.
        assert_eq!(time_of(&at(Val::Missing), Some(-1.0)), bad);
        assert_eq!(time_of(&at(Val::Num(1.0)), Some(-1.0)), Ok(Some(1.0)));
    }

    #[test]
    fn a_time_present_but_unreadable_is_a_bad_line() {
        let at = |time: &str| {
            let line = format!(r#"{{"controller":"A","duration_s":1,"time":{time}}}"#);
            record(&line, LogType::ProductionJson).map(|_| ())
        };
        for bad in [
            r#""2024-05-01 13:00:30 UTC""#,
            r#""yesterday""#,
            r#""""#,
            "true",
            "{}",
        ] {
            assert_eq!(at(bad), Err(Rejection::Bad("bad_time")), "{bad}");
        }
        for good in [
            r#""2024-05-01T13:00:30.123Z""#,
            r#""2024-05-01T13:00:30+02:00""#,
            "1714568430.5",
            "null",
        ] {
            assert_eq!(at(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn gitaly_and_sidekiq_skip_non_requests() {
        let http = r#"{"msg":"finished HTTP request","duration_ms":3}"#;
        assert_eq!(
            record(http, LogType::Gitaly),
            Err(Rejection::Skip("not_a_call"))
        );
        let start = r#"{"class":"W","job_status":"start","jid":"1"}"#;
        assert_eq!(
            record(start, LogType::Sidekiq),
            Err(Rejection::Skip("job_start"))
        );
        let fail = r#"{"class":"W","job_status":"fail","duration":0.25,"jid":"1"}"#;
        assert_eq!(
            record(fail, LogType::Sidekiq),
            Ok(("W".into(), 250.0, true))
        );
    }

    #[test]
    fn detection_passes_over_lines_that_tell_no_format() {
        let mut data =
            r#"{"msg":"finished HTTP request","duration_ms":3}"#.repeat(2 * DETECT_LINES);
        data = data.replace("}{", "}\n{");
        assert_eq!(detect(data.as_bytes()), None);
        data.push_str("\n{\"grpc.method\":\"A\",\"grpc.code\":\"OK\"}\n{\"route\":\"/r\"}\n{\"route\":\"/s\"}");
        assert_eq!(
            detect_all(data.as_bytes()),
            [LogType::ApiJson, LogType::Gitaly]
        );
    }

    #[test]
    fn prefixes() {
        let (json, t) = split_prefix(b"2019-06-17_17:20:03.46097 {\"a\":1}").unwrap();
        assert_eq!(json, b"{\"a\":1}");
        assert!(t.is_some());
        assert!(split_prefix(b"not json at all").is_none());
        let (json, t) =
            split_prefix(b"2024-01-01T00:00:00Z gitlab-webservice-7d9c webservice {\"a\":1}")
                .unwrap();
        assert_eq!((json, t), (&b"{\"a\":1}"[..], Some(1_704_067_200.0)));
        assert!(split_prefix(b"msg=\"text with {braces}\"").is_none());
    }

    #[test]
    fn logfmt_gitaly_lines() {
        let raw = b"2019-06-17_17:20:03.46097 time=\"2019-06-17T17:20:03Z\" level=info msg=\"finished unary call with code OK\" correlation_id=0562c8b6 grpc.code=OK grpc.method=Check grpc.request.glProjectPath=\"g/p \\\"x\\\"\" grpc.time_ms=0.062 peer.address=@ span.kind=server system=grpc";
        let (line, prefix) = parse_logfmt(raw).unwrap();
        assert!(prefix.is_some());
        assert_eq!(classify(&line), Some(LogType::Gitaly));
        let rec = extract(&line, LogType::Gitaly, prefix).unwrap();
        assert_eq!(rec.key.0, "Check");
        assert!((rec.duration_ms - 0.062).abs() < 1e-12);
        assert_eq!(rec.time, Some(1_560_792_003.0));
        assert_eq!(rec.dims[1], Some("g/p \"x\""));
        // Bare, no prefix; a line that is not a call is skipped like its JSON twin.
        let (line, prefix) = parse_logfmt(b"level=info msg=\"diskcache state change\"").unwrap();
        assert_eq!(
            (prefix, extract(&line, LogType::Gitaly, prefix).err()),
            (None, Some(Rejection::Skip("not_a_call")))
        );
        for not in [
            &b"plain text line"[..],
            b"a=1",
            b"key=\"unclosed",
            b"bad key=1 b=2",
            b"2019-06-17 a=1 b=2 c",
        ] {
            assert!(
                parse_logfmt(not).is_none(),
                "{}",
                String::from_utf8_lossy(not)
            );
        }
    }
}
