//! CodeDeploy `AfterAllowTraffic` hook: checks the production listener once it serves green.
//!
//! Everything real lives in the `greenlight` library; this binary only names its stage.

use greenlight::Stage;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    greenlight::run(Stage::AfterAllowTraffic).await
}
