//! Local stand-ins for the AWS reads greenlight makes at cold start: SSM `GetParameter` and
//! Secrets Manager `GetSecretValue` (JSON 1.1, by `X-Amz-Target`) and S3 `GetObject`
//! (path-style REST), with missing and access-denied answers like the real ones. Like AWS, the
//! fake checks every request's SigV4 signature ([`crate::sigv4`]) and refuses a bad one; it
//! can throttle the first requests or never answer at all.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::sigv4::{Signed, verify};
use crate::{AWS_TEST_ENV, AbortOnDrop};

/// The secret key the hooks sign with in tests.
fn test_secret() -> &'static str {
    AWS_TEST_ENV
        .iter()
        .find(|(name, _)| *name == "AWS_SECRET_ACCESS_KEY")
        .map(|(_, value)| *value)
        .unwrap_or_default()
}

/// What the fake does with a request before looking at it: the signature, throttling, hanging.
enum Gate {
    Pass,
    Refuse(Response),
    Hang,
}

fn gate(
    store: &mut Store,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    s3: bool,
) -> Gate {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let checked = verify(method.as_str(), path, headers, body, test_secret());
    store.signatures.push(checked.clone());
    if store.hang {
        return Gate::Hang;
    }
    if let Err(why) = checked {
        return Gate::Refuse(if s3 {
            s3_error(StatusCode::FORBIDDEN, "SignatureDoesNotMatch")
        } else {
            json_error("InvalidSignatureException", &why)
        });
    }
    if store.throttle_first > 0 {
        store.throttle_first -= 1;
        return Gate::Refuse(if s3 {
            s3_error(StatusCode::SERVICE_UNAVAILABLE, "SlowDown")
        } else {
            json_error("ThrottlingException", "Rate exceeded")
        });
    }
    Gate::Pass
}

/// Check a request at the door: `Some` answer when it is refused; never returns while the
/// fake is told to hang.
async fn admit(
    store: &Arc<Mutex<Store>>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    s3: bool,
) -> Option<Response> {
    let gated = gate(&mut store.lock().unwrap(), method, uri, headers, body, s3);
    match gated {
        Gate::Pass => None,
        Gate::Refuse(response) => Some(response),
        Gate::Hang => std::future::pending().await,
    }
}

/// What the fake holds.
#[derive(Default)]
pub struct Store {
    /// SSM parameters: name → (type, value, version).
    pub parameters: BTreeMap<String, (String, String, i64)>,
    /// Secrets: id → string value (None: a binary secret).
    pub secrets: BTreeMap<String, Option<String>>,
    /// S3 objects: "bucket/key" → (body, version id).
    pub objects: BTreeMap<String, (Vec<u8>, String)>,
    /// Names, ids or "bucket/key"s that answer access denied.
    pub denied: BTreeSet<String>,
    /// Every request: (service, what).
    pub requests: Vec<(String, String)>,
    /// Every request's signature check.
    pub signatures: Vec<Result<Signed, String>>,
    /// Answer this many requests (counted across services) as throttled first.
    pub throttle_first: usize,
    /// Accept requests and never answer them.
    pub hang: bool,
    /// The account that owns every bucket: a GetObject whose `x-amz-expected-bucket-owner`
    /// names another is refused (403), as S3 does.
    pub bucket_owner: Option<String>,
    /// The `x-amz-expected-bucket-owner` of each GetObject, as sent.
    pub expected_owners: Vec<Option<String>>,
    /// CloudWatch alarms: (name, state, reason, composite).
    pub alarms: Vec<(String, String, String, bool)>,
    /// Alarms per DescribeAlarms page (all on one page when 0).
    pub alarm_page_size: usize,
    /// CloudWatch datapoints: `METRIC|STAT|TARGET_GROUP` → one value per period, oldest
    /// first, ending at the query's end time (a metric with no entry has no datapoints).
    pub metrics: BTreeMap<String, Vec<f64>>,
    /// Every GetMetricData request body, as sent.
    pub metric_requests: Vec<Value>,
    /// Raw GetMetricData answers, as a hostile or broken CloudWatch might send them: a
    /// request without `NextToken` gets the first, one with `NextToken: "N"` the Nth (from 0;
    /// past the end, an empty answer). Each body carries its own `NextToken`. Empty: the
    /// answers come from `metrics`.
    pub metric_pages: Vec<String>,
    /// ECS service revisions: ARN → the target group ARNs of its resolved configuration.
    pub revisions: BTreeMap<String, Vec<String>>,
    /// What the role may do: (action, resource) pairs IAM's simulation allows.
    pub allowed: BTreeSet<(String, String)>,
    /// SNS `Publish` calls: (topic, subject, message).
    pub published: Vec<(String, String, String)>,
    /// Topics that do not exist (Publish answers NotFound).
    pub missing_topics: BTreeSet<String>,
    /// Lambda `Invoke` calls: (function, qualifier, invocation type, payload).
    pub invocations: Vec<(String, Option<String>, String, Value)>,
    /// The `X-Amzn-Trace-Id` of each invocation, as sent.
    pub invocation_traces: Vec<Option<String>>,
    /// Refuse Invoke calls as access denied.
    pub refuse_invoke: bool,
    /// Target groups whose datapoints come from real traffic: `TargetGroup` dimension value →
    /// base URL of the paysim behind it ([`crate::traffic`]). Others read `metrics`.
    pub live: BTreeMap<String, String>,
}

/// The running fake.
pub struct FakeAws {
    pub addr: SocketAddr,
    pub store: Arc<Mutex<Store>>,
    _task: AbortOnDrop,
}

impl FakeAws {
    pub async fn start(store: Store) -> Self {
        FakeAws::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), store).await
    }

    /// Listen on `addr` (the rehearsal's fixed port).
    pub async fn start_on(addr: SocketAddr, store: Store) -> Self {
        let store = Arc::new(Mutex::new(store));
        let app = Router::new()
            .route("/", post(json_api))
            .route(
                "/2015-03-31/functions/{name}/invocations",
                post(lambda_invoke),
            )
            .route("/{bucket}/{*key}", get(s3_get))
            .with_state(Arc::clone(&store));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeAws {
            addr,
            store,
            _task: AbortOnDrop(task),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The environment that points the SDK's SSM, S3 and Secrets Manager clients here.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL_SSM", self.url()),
            ("AWS_ENDPOINT_URL_S3", self.url()),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", self.url()),
            ("AWS_ENDPOINT_URL_CLOUDWATCH", self.url()),
            ("AWS_ENDPOINT_URL_ECS", self.url()),
            ("AWS_ENDPOINT_URL_LAMBDA", self.url()),
            ("AWS_ENDPOINT_URL_SNS", self.url()),
            ("AWS_ENDPOINT_URL_STS", self.url()),
            ("AWS_ENDPOINT_URL_IAM", self.url()),
        ]
    }

    pub fn requests(&self) -> Vec<(String, String)> {
        self.store.lock().unwrap().requests.clone()
    }

    /// Every request's signature check, in order.
    pub fn signatures(&self) -> Vec<Result<Signed, String>> {
        self.store.lock().unwrap().signatures.clone()
    }
}

fn json_error(error_type: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/x-amz-json-1.1")],
        json!({"__type": error_type, "message": message}).to_string(),
    )
        .into_response()
}

async fn json_api(
    State(store): State<Arc<Mutex<Store>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Some(refused) = admit(&store, &method, &uri, &headers, &body, false).await {
        return refused;
    }
    // Datapoints from real traffic are read before the store is locked (the read awaits).
    let live_targets = store.lock().unwrap().live.clone();
    let mut live: BTreeMap<String, Option<Vec<crate::traffic::Sample>>> = BTreeMap::new();
    if target.ends_with(".GetMetricData") && !live_targets.is_empty() {
        // The workspace builds reqwest without a bundled crypto provider; ring is the one in use.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        for (group, url) in &live_targets {
            live.insert(group.clone(), crate::traffic::samples(&client, url).await);
        }
    }
    let mut store = store.lock().unwrap();
    match target.as_str() {
        "AmazonSSM.GetParameter" => {
            let name = request["Name"].as_str().unwrap_or_default().to_owned();
            store.requests.push(("ssm".into(), name.clone()));
            if store.denied.contains(&name) {
                return json_error(
                    "AccessDeniedException",
                    &format!("not authorized to perform: ssm:GetParameter on resource: {name}"),
                );
            }
            match store.parameters.get(&name) {
                Some((kind, value, version)) => (
                    StatusCode::OK,
                    [("content-type", "application/x-amz-json-1.1")],
                    json!({"Parameter": {"Name": name, "Type": kind, "Value": value, "Version": version, "DataType": "text"}}).to_string(),
                )
                    .into_response(),
                None => json_error("ParameterNotFound", ""),
            }
        }
        "secretsmanager.GetSecretValue" => {
            let id = request["SecretId"].as_str().unwrap_or_default().to_owned();
            store.requests.push(("secretsmanager".into(), id.clone()));
            if store.denied.contains(&id) {
                return json_error(
                    "AccessDeniedException",
                    "not authorized to perform: secretsmanager:GetSecretValue",
                );
            }
            match store.secrets.get(&id) {
                Some(Some(value)) => (
                    StatusCode::OK,
                    [("content-type", "application/x-amz-json-1.1")],
                    json!({"ARN": format!("arn:aws:secretsmanager:us-east-1:1:secret:{id}"), "Name": id, "SecretString": value, "VersionId": "v1"}).to_string(),
                )
                    .into_response(),
                Some(None) => (
                    StatusCode::OK,
                    [("content-type", "application/x-amz-json-1.1")],
                    json!({"ARN": format!("arn:aws:secretsmanager:us-east-1:1:secret:{id}"), "Name": id, "SecretBinary": "AAEC", "VersionId": "v1"}).to_string(),
                )
                    .into_response(),
                None => json_error("ResourceNotFoundException", "Secrets Manager can't find the specified secret."),
            }
        }
        "GraniteServiceVersion20100801.DescribeAlarms" => {
            let names: Vec<&str> = request["AlarmNames"]
                .as_array()
                .map(|names| names.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let prefix = request["AlarmNamePrefix"].as_str();
            store.requests.push((
                "cloudwatch".into(),
                prefix.map_or_else(|| names.join(","), |p| format!("{p}*")),
            ));
            if names.iter().any(|name| store.denied.contains(*name)) {
                return json_error(
                    "AccessDeniedException",
                    "User is not authorized to perform: cloudwatch:DescribeAlarms",
                );
            }
            let matching: Vec<&(String, String, String, bool)> = store
                .alarms
                .iter()
                .filter(|(name, ..)| match prefix {
                    Some(prefix) => name.starts_with(prefix),
                    None => names.contains(&name.as_str()),
                })
                .collect();
            let start: usize = request["NextToken"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let size = if store.alarm_page_size == 0 {
                matching.len().max(1)
            } else {
                store.alarm_page_size
            };
            let page = matching.iter().skip(start).take(size);
            let as_json = |(name, state, reason, _): &(String, String, String, bool)| json!({"AlarmName": name, "StateValue": state, "StateReason": reason, "StateUpdatedTimestamp": 1_795_000_000.0});
            let (composite, metric): (Vec<_>, Vec<_>) = page.partition(|(.., c)| *c);
            let mut answer = json!({
                "MetricAlarms": metric.into_iter().map(&as_json).collect::<Vec<_>>(),
                "CompositeAlarms": composite.into_iter().map(&as_json).collect::<Vec<_>>(),
            });
            if start + size < matching.len() {
                answer["NextToken"] = (start + size).to_string().into();
            }
            (
                StatusCode::OK,
                [("content-type", "application/x-amz-json-1.0")],
                answer.to_string(),
            )
                .into_response()
        }
        "GraniteServiceVersion20100801.GetMetricData" => {
            store
                .requests
                .push(("cloudwatch".into(), "GetMetricData".into()));
            store.metric_requests.push(request.clone());
            if !store.metric_pages.is_empty() {
                let page: usize = request["NextToken"]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                let body = store
                    .metric_pages
                    .get(page)
                    .cloned()
                    .unwrap_or_else(|| json!({"MetricDataResults": []}).to_string());
                return (
                    StatusCode::OK,
                    [("content-type", "application/x-amz-json-1.0")],
                    body,
                )
                    .into_response();
            }
            let start = request["StartTime"].as_f64().unwrap_or(0.0);
            let end = request["EndTime"].as_f64().unwrap_or(0.0);
            let queries = request["MetricDataQueries"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
            let mut results = Vec::new();
            for query in &queries {
                let id = query["Id"].as_str().unwrap_or_default().to_owned();
                let points = if let Some(stat) = query.get("MetricStat") {
                    let metric = &stat["Metric"];
                    let target_group = metric["Dimensions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|d| d["Name"] == "TargetGroup")
                        .and_then(|d| d["Value"].as_str())
                        .unwrap_or("-");
                    let key = format!(
                        "{}|{}|{}",
                        metric["MetricName"].as_str().unwrap_or_default(),
                        stat["Stat"].as_str().unwrap_or_default(),
                        target_group
                    );
                    let period = stat["Period"].as_f64().unwrap_or(60.0);
                    if let Some(samples) = live.get(target_group) {
                        crate::traffic::series(
                            metric["MetricName"].as_str().unwrap_or_default(),
                            stat["Stat"].as_str().unwrap_or_default(),
                            samples.as_deref(),
                            period,
                            start,
                            end,
                        )
                    } else {
                        let values = store.metrics.get(&key).cloned().unwrap_or_default();
                        let n = values.len() as f64;
                        values
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (end - period * (n - i as f64), v))
                            .filter(|(at, _)| *at >= start)
                            .collect()
                    }
                } else {
                    evaluate(query["Expression"].as_str().unwrap_or_default(), &series)
                };
                series.insert(id.clone(), points.clone());
                if query["ReturnData"].as_bool().unwrap_or(true) {
                    let (timestamps, values): (Vec<f64>, Vec<f64>) = points.into_iter().unzip();
                    results.push(json!({"Id": id, "Label": id, "Timestamps": timestamps, "Values": values, "StatusCode": "Complete"}));
                }
            }
            (
                StatusCode::OK,
                [("content-type", "application/x-amz-json-1.0")],
                json!({"MetricDataResults": results, "Messages": []}).to_string(),
            )
                .into_response()
        }
        "AmazonEC2ContainerServiceV20141113.DescribeServiceRevisions" => {
            let arns: Vec<String> = request["serviceRevisionArns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            store.requests.push(("ecs".into(), arns.join(",")));
            if arns.iter().any(|arn| store.denied.contains(arn)) {
                return json_error(
                    "AccessDeniedException",
                    "User is not authorized to perform: ecs:DescribeServiceRevisions",
                );
            }
            // As ECS does: an unknown ARN is a failure entry in a 200 answer.
            let (known, missing): (Vec<&String>, Vec<&String>) = arns
                .iter()
                .partition(|arn| store.revisions.contains_key(*arn));
            let revisions: Vec<Value> = known
                .iter()
                .map(|arn| {
                    let groups = &store.revisions[*arn];
                    json!({
                        "serviceRevisionArn": arn,
                        // The service's configured primary group, which does not swap: a
                        // reader that took it would pick the wrong side.
                        "loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/payments-a/73e2d6bc24d8a067", "containerName": "app", "containerPort": 8080}],
                        "resolvedConfiguration": {"loadBalancers": groups.iter().map(|g| json!({"targetGroupArn": g, "productionListenerRule": "arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/app/payments-alb/1/2/3"})).collect::<Vec<_>>()},
                    })
                })
                .collect();
            let failures: Vec<Value> = missing
                .iter()
                .map(|arn| json!({"arn": arn, "reason": "MISSING"}))
                .collect();
            (
                StatusCode::OK,
                [("content-type", "application/x-amz-json-1.1")],
                json!({"serviceRevisions": revisions, "failures": failures}).to_string(),
            )
                .into_response()
        }
        // SNS speaks the query protocol: a form, answered in XML.
        "" if headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded")) =>
        {
            let form: BTreeMap<String, String> =
                url::form_urlencoded::parse(&body).into_owned().collect();
            let field = |name: &str| form.get(name).cloned().unwrap_or_default();
            match field("Action").as_str() {
                "GetCallerIdentity" => {
                    store
                        .requests
                        .push(("sts".into(), "GetCallerIdentity".into()));
                    return (
                        StatusCode::OK,
                        [("content-type", "text/xml")],
                        "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:sts::123456789012:assumed-role/greenlight-hooks/hook</Arn><UserId>AROA:hook</UserId><Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>",
                    )
                        .into_response();
                }
                "SimulatePrincipalPolicy" => {
                    let resource = field("ResourceArns.member.1");
                    store.requests.push((
                        "iam".into(),
                        format!("{} {resource}", field("PolicySourceArn")),
                    ));
                    let members: String = (1..)
                        .map_while(|i| form.get(&format!("ActionNames.member.{i}")))
                        .map(|action| {
                            let decision = if store.allowed.contains(&(action.clone(), resource.clone())) {
                                "allowed"
                            } else {
                                "implicitDeny"
                            };
                            format!("<member><EvalActionName>{action}</EvalActionName><EvalResourceName>{resource}</EvalResourceName><EvalDecision>{decision}</EvalDecision></member>")
                        })
                        .collect();
                    return (
                        StatusCode::OK,
                        [("content-type", "text/xml")],
                        format!("<SimulatePrincipalPolicyResponse><SimulatePrincipalPolicyResult><EvaluationResults>{members}</EvaluationResults><IsTruncated>false</IsTruncated></SimulatePrincipalPolicyResult></SimulatePrincipalPolicyResponse>"),
                    )
                        .into_response();
                }
                "Publish" => {}
                _ => {
                    return json_error(
                        "InvalidAction",
                        "only Publish, GetCallerIdentity and SimulatePrincipalPolicy are served here",
                    );
                }
            }
            let topic = field("TopicArn");
            store.requests.push(("sns".into(), topic.clone()));
            if store.missing_topics.contains(&topic) {
                return (
                    StatusCode::NOT_FOUND,
                    [("content-type", "text/xml")],
                    "<ErrorResponse><Error><Type>Sender</Type><Code>NotFound</Code><Message>Topic does not exist</Message></Error></ErrorResponse>",
                )
                    .into_response();
            }
            store
                .published
                .push((topic, field("Subject"), field("Message")));
            (
                StatusCode::OK,
                [("content-type", "text/xml")],
                "<PublishResponse><PublishResult><MessageId>m-1</MessageId></PublishResult></PublishResponse>",
            )
                .into_response()
        }
        other => json_error("UnknownOperationException", other),
    }
}

/// Lambda `Invoke`: records the call and answers 202 (queued), as for `InvocationType: Event`.
async fn lambda_invoke(
    State(store): State<Arc<Mutex<Store>>>,
    Path(name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = admit(&store, &method, &uri, &headers, &body, false).await {
        return refused;
    }
    let mut store = store.lock().unwrap();
    store.requests.push(("lambda".into(), name.clone()));
    if store.refuse_invoke {
        return (
            StatusCode::FORBIDDEN,
            [("x-amzn-errortype", "AccessDeniedException")],
            json!({"Message": format!("not authorized to perform: lambda:InvokeFunction on {name}")}).to_string(),
        )
            .into_response();
    }
    let qualifier = uri.query().and_then(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix("Qualifier=").map(str::to_owned))
    });
    let kind = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse")
        .to_owned();
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    store.invocations.push((name, qualifier, kind, payload));
    let trace = headers
        .get("x-amzn-trace-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    store.invocation_traces.push(trace);
    StatusCode::ACCEPTED.into_response()
}

fn s3_error(status: StatusCode, code: &str) -> Response {
    (
        status,
        [("content-type", "application/xml")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{code}</Message><RequestId>1</RequestId></Error>"),
    )
        .into_response()
}

async fn s3_get(
    State(store): State<Arc<Mutex<Store>>>,
    Path((bucket, key)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = format!("{bucket}/{key}");
    if let Some(refused) = admit(&store, &method, &uri, &headers, &[], true).await {
        return refused;
    }
    let mut store = store.lock().unwrap();
    store.requests.push(("s3".into(), path.clone()));
    let expected = headers
        .get("x-amz-expected-bucket-owner")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    store.expected_owners.push(expected.clone());
    if store.denied.contains(&path) {
        return s3_error(StatusCode::FORBIDDEN, "AccessDenied");
    }
    if let (Some(owner), Some(expected)) = (&store.bucket_owner, &expected)
        && owner != expected
    {
        return s3_error(StatusCode::FORBIDDEN, "AccessDenied");
    }
    match store.objects.get(&path) {
        Some((body, version)) => (
            StatusCode::OK,
            [
                ("content-type", "application/yaml".to_owned()),
                ("etag", "\"0123456789abcdef\"".to_owned()),
                ("x-amz-version-id", version.clone()),
            ],
            body.clone(),
        )
            .into_response(),
        None => s3_error(StatusCode::NOT_FOUND, "NoSuchKey"),
    }
}

/// Metric math, as much as the tests use: numbers, query ids, `+ - * /`, parentheses and
/// `FILL(id, number)`,
/// evaluated datapoint by datapoint over the timestamps the series share.
fn evaluate(expression: &str, series: &BTreeMap<String, Vec<(f64, f64)>>) -> Vec<(f64, f64)> {
    let tokens: Vec<String> = {
        let mut out = Vec::new();
        let mut word = String::new();
        for c in expression.chars() {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                word.push(c);
            } else {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                if !c.is_whitespace() {
                    out.push(c.to_string());
                }
            }
        }
        if !word.is_empty() {
            out.push(word);
        }
        out
    };
    let times: Vec<f64> = series
        .values()
        .flat_map(|points| points.iter().map(|(at, _)| *at))
        .fold(Vec::new(), |mut all, at| {
            if !all.contains(&at) {
                all.push(at);
            }
            all
        });
    let mut out = Vec::new();
    for at in times {
        let value_of = |name: &str| -> Option<f64> {
            name.parse::<f64>().ok().or_else(|| {
                series
                    .get(name)
                    .and_then(|points| points.iter().find(|(t, _)| *t == at).map(|(_, v)| *v))
            })
        };
        let mut position = 0;
        if let Some(value) = expr(&tokens, &mut position, &value_of)
            && value.is_finite()
        {
            out.push((at, value));
        }
    }
    out
}

fn expr(tokens: &[String], at: &mut usize, value_of: &dyn Fn(&str) -> Option<f64>) -> Option<f64> {
    let mut left = term(tokens, at, value_of)?;
    while let Some(op) = tokens.get(*at).filter(|t| *t == "+" || *t == "-").cloned() {
        *at += 1;
        let right = term(tokens, at, value_of)?;
        left = if op == "+" {
            left + right
        } else {
            left - right
        };
    }
    Some(left)
}

fn term(tokens: &[String], at: &mut usize, value_of: &dyn Fn(&str) -> Option<f64>) -> Option<f64> {
    let mut left = factor(tokens, at, value_of)?;
    while let Some(op) = tokens.get(*at).filter(|t| *t == "*" || *t == "/").cloned() {
        *at += 1;
        let right = factor(tokens, at, value_of)?;
        left = if op == "*" {
            left * right
        } else {
            left / right
        };
    }
    Some(left)
}

fn factor(
    tokens: &[String],
    at: &mut usize,
    value_of: &dyn Fn(&str) -> Option<f64>,
) -> Option<f64> {
    let token = tokens.get(*at)?.clone();
    *at += 1;
    if token == "(" {
        let value = expr(tokens, at, value_of)?;
        *at += 1;
        Some(value)
    } else if token == "FILL" && tokens.get(*at).map(String::as_str) == Some("(") {
        // FILL(series, number): the series, or the number where it has no datapoint.
        let series = tokens.get(*at + 1)?.clone();
        let fill = tokens.get(*at + 3)?.parse::<f64>().ok()?;
        *at += 5;
        value_of(&series).or(Some(fill))
    } else {
        value_of(&token)
    }
}
