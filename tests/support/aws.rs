//! Local stand-ins for the AWS reads greenlight makes at cold start: SSM `GetParameter` and
//! Secrets Manager `GetSecretValue` (JSON 1.1, by `X-Amz-Target`) and S3 `GetObject`
//! (path-style REST), with missing and access-denied answers like the real ones.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::AbortOnDrop;

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
}

/// The running fake.
pub struct FakeAws {
    pub addr: SocketAddr,
    pub store: Arc<Mutex<Store>>,
    _task: AbortOnDrop,
}

impl FakeAws {
    pub async fn start(store: Store) -> Self {
        let store = Arc::new(Mutex::new(store));
        let app = Router::new()
            .route("/", post(json_api))
            .route("/{bucket}/{*key}", get(s3_get))
            .with_state(Arc::clone(&store));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
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
        ]
    }

    pub fn requests(&self) -> Vec<(String, String)> {
        self.store.lock().unwrap().requests.clone()
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
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
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
        other => json_error("UnknownOperationException", other),
    }
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
) -> Response {
    let path = format!("{bucket}/{key}");
    let mut store = store.lock().unwrap();
    store.requests.push(("s3".into(), path.clone()));
    if store.denied.contains(&path) {
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
