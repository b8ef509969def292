//! CodeDeploy `AfterAllowTestTraffic` hook: checks green through the test listener.
//!
//! Everything real lives in the `greenlight` library; this binary only names its stage.

use greenlight::Stage;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    greenlight::run(Stage::AfterAllowTestTraffic).await
}
