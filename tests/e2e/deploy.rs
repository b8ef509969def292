//! The deployment files agree with the code: the SAM template builds the three hook binaries
//! under CodeDeployHook_ names, and the example AppSpec names exactly those functions.
//! (`make lint-templates` checks the templates themselves with cfn-lint and sam validate.)

// Test helpers panic on purpose: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use greenlight_e2e::lambda::{binary, workspace_root};

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path)).unwrap()
}

#[test]
fn the_template_builds_the_three_hooks_under_codedeploy_hook_names() {
    let template = read("template.yaml");
    for (bin, stage) in [
        ("after-allow-test-traffic", "AfterAllowTestTraffic"),
        ("before-allow-traffic", "BeforeAllowTraffic"),
        ("after-allow-traffic", "AfterAllowTraffic"),
    ] {
        assert!(
            template.contains(&format!("Binary: {bin}")),
            "template does not build {bin}"
        );
        // The binary really is one of the workspace's.
        assert!(binary(bin).exists());
        assert!(
            template.contains(&format!(
                "FunctionName: !Sub \"${{FunctionNamePrefix}}_{stage}\""
            )),
            "{stage}"
        );
    }
    assert!(template.contains("Default: CodeDeployHook_greenlight"));
    assert!(template.contains("AllowedPattern: \"^CodeDeployHook_"));
    assert!(template.contains("BuildMethod: rust-cargolambda"));
    assert!(template.contains("Runtime: provided.al2023"));
    assert!(template.contains("Architectures: [arm64]"));
    // Least privilege: the status call is scoped to the deployment group.
    assert!(
        template.contains("deploymentgroup:${CodeDeployApplication}/${CodeDeployDeploymentGroup}")
    );
    // Statements on "*" are only for actions that take no resource: EC2's Describe calls (in a
    // VPC) and CloudWatch's GetMetricData (with metric checks on).
    let lines: Vec<&str> = template.lines().collect();
    let wildcards: Vec<&str> = (0..lines.len())
        .filter(|&i| lines[i].trim() == "Resource: \"*\"")
        .map(|i| lines[i - 1].trim())
        .collect();
    assert_eq!(
        wildcards,
        [
            "Action: cloudwatch:GetMetricData",
            "Action: [ec2:DescribeNetworkInterfaces, ec2:DescribeSubnets]"
        ]
    );
    // The managed VPC role (logs:* on *) is gone; ENI permissions are inline.
    assert!(!template.contains("AWSLambdaVPCAccessExecutionRole\""));
    assert!(!template.contains("policy/service-role/AWSLambdaVPCAccessExecutionRole"));
    // Secrets under a customer-managed key: Decrypt on that key, only via Secrets Manager/SSM.
    assert!(template.contains("kms:ViaService"));
    // The S3 config read names its expected bucket owner (the code sends it).
    assert!(template.contains("GREENLIGHT_CONFIG_BUCKET_OWNER"));
    // ECS assumes the hook role as AWS documents it, with no condition unless asked for
    // (whether ECS sends aws:SourceAccount is unverified).
    assert!(template.contains(
        "Condition: !If\n              - EcsHookRoleSourceAccount\n              - StringEquals:\n                  aws:SourceAccount: !Ref AWS::AccountId\n              - !Ref AWS::NoValue"
    ));
    // Invoke rights are not approve rights: the stack generates the key that seals a watch's
    // state, gives the functions its ARN only, and lets them read that one secret.
    assert!(template.contains("Type: AWS::SecretsManager::Secret"));
    assert!(template.contains("GenerateSecretString:\n        PasswordLength: 64"));
    assert!(template.contains("GREENLIGHT_STATE_KEY_SECRET: !Ref WatchStateKey"));
    assert!(template.contains(
        "Action: secretsmanager:GetSecretValue\n                Resource: !Ref WatchStateKey"
    ));
    // A chain of continuations is bounded by greenlight, not cut by Lambda's loop detection;
    // reserved concurrency caps it; an event older than CodeDeploy's hour is not retried.
    assert!(template.contains("RecursiveLoop: Allow"));
    assert!(template.contains("ReservedConcurrency:\n    Type: Number\n    Default: 5"));
    assert!(template.contains("MaximumEventAgeInSeconds: 3600"));
    // Alarm reads only when asked for, on this account's alarms.
    assert!(template.contains("EnableMetricChecks"));
    assert!(template.contains("cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"));
    // A watch's continuation invokes the hooks themselves, by name, and nothing else.
    let invoke = template
        .split("Sid: ContinueWatchInNextInvocation")
        .nth(1)
        .unwrap()
        .split("- Sid:")
        .next()
        .unwrap()
        .to_owned();
    assert!(invoke.contains("Action: lambda:InvokeFunction"));
    assert!(!invoke.contains("function:*"), "{invoke}");
    assert_eq!(invoke.matches("function:${FunctionNamePrefix}_").count(), 6);
    // The doctor simulates the role's own policies, and nothing else's; it knows the group.
    assert!(template.contains(
        "Action: iam:SimulatePrincipalPolicy\n            Resource: !GetAtt HookRole.Arn"
    ));
    assert!(template.contains("GREENLIGHT_DEPLOYMENT_GROUP_ARN: !Sub"));
    // Notifications publish to the configured topic only.
    assert!(
        template
            .contains("Action: sns:Publish\n                  Resource: !Ref NotificationTopicArn")
    );
    // ECS-native discovery reads only the named service's revisions.
    assert!(template.contains("Action: ecs:DescribeServiceRevisions"));
    assert!(template.contains("service-revision/${EcsService}/*"));
}

#[test]
fn the_example_appspec_names_the_template_functions() {
    let appspec = read("examples/appspec.yaml");
    for stage in [
        "AfterAllowTestTraffic",
        "BeforeAllowTraffic",
        "AfterAllowTraffic",
    ] {
        assert!(
            appspec.contains(&format!("- {stage}: CodeDeployHook_greenlight_{stage}")),
            "{stage}"
        );
    }
}
