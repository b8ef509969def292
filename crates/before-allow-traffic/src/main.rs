//! CodeDeploy `BeforeAllowTraffic` hook: the last gate before production traffic moves to green.
//!
//! Everything real lives in the `greenlight` library; this binary only names its stage.

use greenlight::Stage;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    greenlight::run(Stage::BeforeAllowTraffic).await
}
