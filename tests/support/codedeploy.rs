//! A local CodeDeploy: `PutLifecycleEventHookExecutionStatus` over the JSON 1.1 protocol, with
//! the same rules as the real one (one status per hook execution, then
//! `LifecycleEventAlreadyCompletedException`), faults on demand, and a record of every call.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::{AbortOnDrop, wait_until};

pub const TARGET: &str = "CodeDeploy_20141006.PutLifecycleEventHookExecutionStatus";
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// A response forced on the next call (or on every call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 400 `ThrottlingException` (retryable).
    Throttle,
    /// 500 `InternalFailure` (retryable).
    ServerError,
    /// 400 `AccessDeniedException` (final: a missing IAM permission).
    AccessDenied,
}

/// One request as received, and what it was answered.
#[derive(Debug, Clone)]
pub struct Call {
    pub target: Option<String>,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub body: Value,
    pub status: u16,
    pub error_type: Option<String>,
}

impl Call {
    pub fn reported_status(&self) -> Option<&str> {
        self.body["status"].as_str()
    }
    pub fn accepted(&self) -> bool {
        self.status == 200
    }
}

#[derive(Default)]
struct Inner {
    /// Deployment id → green's target group name, for ListDeploymentTargets/GetDeploymentTarget.
    green: Mutex<std::collections::HashMap<String, String>>,
    /// Deny the two target calls.
    deny_targets: Mutex<bool>,
    /// The target calls seen (operation names), apart from the status reports.
    lookups: Mutex<Vec<String>>,
    script: Mutex<VecDeque<Fault>>,
    always: Mutex<Option<Fault>>,
    calls: Mutex<Vec<Call>>,
    completed: Mutex<HashSet<String>>,
    /// Deployments CodeDeploy does not know: a status for them is DeploymentDoesNotExist.
    missing: Mutex<HashSet<String>>,
    changed: Notify,
    print: bool,
}

/// The running fake.
pub struct FakeCodeDeploy {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    _task: AbortOnDrop,
}

impl FakeCodeDeploy {
    /// Listen on a free loopback port.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), false).await
    }

    /// Listen on `addr`; with `print`, write one line per call to stdout (for demos).
    pub async fn start_on(addr: SocketAddr, print: bool) -> Self {
        let inner = Arc::new(Inner {
            print,
            ..Inner::default()
        });
        let app = Router::new()
            .route("/", post(handle))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeCodeDeploy {
            addr,
            inner,
            _task: AbortOnDrop(task),
        }
    }

    /// The endpoint URL (for `AWS_ENDPOINT_URL_CODEDEPLOY`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answer the next calls with these faults, in order, then behave normally.
    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.inner.script.lock().unwrap().extend(faults);
    }

    /// Make `deployment` an ECS deployment whose task set labelled Green sits in the target
    /// group named `green` (and Blue in `blue`); `*` stands for every deployment.
    pub fn deployment(&self, deployment: &str, green: &str, blue: &str) {
        self.inner
            .green
            .lock()
            .unwrap()
            .insert(deployment.to_owned(), format!("{green}|{blue}"));
    }

    /// Answer a status for `deployment` as CodeDeploy does for a deployment it does not know.
    pub fn missing_deployment(&self, deployment: &str) {
        self.inner
            .missing
            .lock()
            .unwrap()
            .insert(deployment.to_owned());
    }

    /// Refuse ListDeploymentTargets and GetDeploymentTarget (a missing IAM permission).
    pub fn deny_target_calls(&self) {
        *self.inner.deny_targets.lock().unwrap() = true;
    }

    /// The target calls (ListDeploymentTargets, GetDeploymentTarget) seen so far.
    pub fn lookups(&self) -> Vec<String> {
        self.inner.lookups.lock().unwrap().clone()
    }

    /// Answer every call with this fault.
    pub fn always(&self, fault: Fault) {
        *self.inner.always.lock().unwrap() = Some(fault);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.calls.lock().unwrap().clone()
    }

    /// Wait (bounded) until at least `n` calls arrived; returns all calls.
    pub async fn wait_for_calls(&self, n: usize, limit: Duration) -> Vec<Call> {
        wait_until(limit, &self.inner.changed, || {
            self.inner.calls.lock().unwrap().len() >= n
        })
        .await;
        self.calls()
    }
}

fn error(status: StatusCode, error_type: &str, message: &str) -> (StatusCode, String, Value) {
    (
        status,
        error_type.to_owned(),
        json!({"__type": error_type, "message": message}),
    )
}

async fn handle(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let target = header("x-amz-target");
    let content_type = header("content-type");
    let authorization = header("authorization");
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Some(operation) = target
        .as_deref()
        .and_then(|t| t.strip_prefix("CodeDeploy_20141006."))
        .filter(|op| matches!(*op, "ListDeploymentTargets" | "GetDeploymentTarget"))
    {
        return deployment_target(&inner, operation, &parsed);
    }

    let answer: Result<Value, (StatusCode, String, Value)> = (|| {
        if target.as_deref() != Some(TARGET) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "UnknownOperationException",
                "unknown X-Amz-Target",
            ));
        }
        if content_type.as_deref() != Some(CONTENT_TYPE) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "SerializationException",
                "expected application/x-amz-json-1.1",
            ));
        }
        let signed = authorization.as_deref().is_some_and(|a| {
            a.starts_with("AWS4-HMAC-SHA256 Credential=") && a.contains("/codedeploy/aws4_request")
        });
        if !signed {
            return Err(error(
                StatusCode::FORBIDDEN,
                "MissingAuthenticationTokenException",
                "request is not SigV4-signed for codedeploy",
            ));
        }
        let deployment = parsed["deploymentId"].as_str().unwrap_or_default();
        if deployment.is_empty() {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "DeploymentIdRequiredException",
                "deploymentId is required",
            ));
        }
        let execution = parsed["lifecycleEventHookExecutionId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if execution.is_empty() {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "InvalidLifecycleEventHookExecutionIdException",
                "lifecycleEventHookExecutionId is required",
            ));
        }
        if !matches!(parsed["status"].as_str(), Some("Succeeded" | "Failed")) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "InvalidLifecycleEventHookExecutionStatusException",
                "status must be Succeeded or Failed",
            ));
        }
        if inner.missing.lock().unwrap().contains(deployment) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "DeploymentDoesNotExistException",
                &format!("The deployment {deployment} could not be found."),
            ));
        }
        let fault = inner
            .script
            .lock()
            .unwrap()
            .pop_front()
            .or(*inner.always.lock().unwrap());
        match fault {
            Some(Fault::Throttle) => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "ThrottlingException",
                    "Rate exceeded",
                ));
            }
            Some(Fault::ServerError) => {
                return Err(error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalFailure",
                    "internal failure",
                ));
            }
            Some(Fault::AccessDenied) => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "AccessDeniedException",
                    "User is not authorized to perform: codedeploy:PutLifecycleEventHookExecutionStatus",
                ));
            }
            None => {}
        }
        if !inner.completed.lock().unwrap().insert(execution.clone()) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "LifecycleEventAlreadyCompletedException",
                "The lifecycle event is already completed",
            ));
        }
        Ok(json!({"lifecycleEventHookExecutionId": execution}))
    })();

    let (status, error_type, body) = match answer {
        Ok(body) => (StatusCode::OK, None, body),
        Err((status, error_type, body)) => (status, Some(error_type), body),
    };
    if inner.print {
        println!(
            "[codedeploy] PutLifecycleEventHookExecutionStatus deployment={} execution={} status={} -> {} {}",
            parsed["deploymentId"].as_str().unwrap_or("?"),
            parsed["lifecycleEventHookExecutionId"]
                .as_str()
                .unwrap_or("?"),
            parsed["status"].as_str().unwrap_or("?"),
            status.as_u16(),
            error_type.as_deref().unwrap_or("accepted"),
        );
    }
    inner.calls.lock().unwrap().push(Call {
        target,
        content_type,
        authorization,
        body: parsed,
        status: status.as_u16(),
        error_type,
    });
    inner.changed.notify_waiters();
    (
        status,
        [("content-type", CONTENT_TYPE)],
        serde_json::to_string(&body).unwrap(),
    )
        .into_response()
}

/// `ListDeploymentTargets` and `GetDeploymentTarget` of an ECS deployment: one target, two task
/// sets labelled Blue and Green with their target groups.
fn deployment_target(inner: &Inner, operation: &str, request: &Value) -> Response {
    inner.lookups.lock().unwrap().push(operation.to_owned());
    let answer = |status: StatusCode, body: Value| {
        (status, [("content-type", CONTENT_TYPE)], body.to_string()).into_response()
    };
    if *inner.deny_targets.lock().unwrap() {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"__type": "AccessDeniedException", "message": format!("User is not authorized to perform: codedeploy:{operation}")}),
        );
    }
    let deployment = request["deploymentId"].as_str().unwrap_or_default();
    let known = inner.green.lock().unwrap();
    let Some(groups) = known.get(deployment).or_else(|| known.get("*")).cloned() else {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"__type": "DeploymentDoesNotExistException", "message": format!("Deployment {deployment} does not exist")}),
        );
    };
    drop(known);
    let (green, blue) = groups.split_once('|').unwrap_or_default();
    match operation {
        "ListDeploymentTargets" => answer(
            StatusCode::OK,
            json!({"targetIds": ["payments:payments-api"]}),
        ),
        _ => answer(
            StatusCode::OK,
            json!({"deploymentTarget": {
                "deploymentTargetType": "ECSTarget",
                "ecsTarget": {
                    "deploymentId": deployment,
                    "targetId": "payments:payments-api",
                    "status": "InProgress",
                    "taskSetsInfo": [
                        {"identifer": "ecs-svc/1", "status": "PRIMARY", "trafficWeight": 100.0,
                         "targetGroup": {"name": blue}, "taskSetLabel": "Blue"},
                        {"identifer": "ecs-svc/2", "status": "ACTIVE", "trafficWeight": 0.0,
                         "targetGroup": {"name": green}, "taskSetLabel": "Green"}
                    ]
                }
            }}),
        ),
    }
}
