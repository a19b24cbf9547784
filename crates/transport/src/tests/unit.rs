//! Signing against botocore's own output, error recognition, the retry policy, redaction and
//! the scripted transport.

use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::response::{api_error, retry_after, unknown_operation};
use crate::retry::{RetryClass, TokenBucket, classify, decide};
use crate::{
    Api, ApiError, Auth, Call, Exception, HttpConfig, HttpTransport, RetryConfig, Scripted,
    ScriptedTransport, Secret, Transport, TransportError,
};

fn test_data(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data").join(file);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn time(text: &str) -> SystemTime {
    // `2026-11-22T12:34:56Z`: days from the civil date, then seconds.
    let (date, clock) = text.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let t: Vec<u64> = clock.split(':').map(|p| p.parse().unwrap()).collect();
    let (y, m) = if d[1] <= 2 { (d[0] - 1, d[1] + 9) } else { (d[0], d[1] - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe - 719_468) as u64;
    SystemTime::UNIX_EPOCH + Duration::from_secs(days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2])
}

#[test]
fn sigv4_signatures_equal_botocores_including_arn_model_ids_and_session_tokens() {
    let data = test_data("sigv4/sigv4.json");
    let cases = data["cases"].as_array().unwrap();
    assert!(cases.len() >= 6);
    let mut arns = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let model_id = case["model_id"].as_str().unwrap();
        arns += usize::from(model_id.starts_with("arn:"));
        let api = if case["operation"].as_str().unwrap().starts_with("invoke") {
            Api::InvokeModel
        } else {
            Api::Converse
        };
        let stream = case["operation"].as_str().unwrap().ends_with("stream");
        let region = case["region"].as_str().unwrap();
        let call = Call::new(api, model_id, case["body"].as_str().unwrap().to_owned());
        let url = format!("https://bedrock-runtime.{region}.amazonaws.com{}", call.path(stream));
        assert_eq!(url, case["url"].as_str().unwrap(), "{name}: the URL botocore built");
        let credentials = Credentials::new(
            case["access_key_id"].as_str().unwrap(),
            case["secret_access_key"].as_str().unwrap(),
            case["session_token"].as_str().map(str::to_owned),
            None,
            "test",
        );
        let headers = crate::sign_sigv4(
            "POST",
            &url,
            &[("content-type", case["content_type"].as_str().unwrap())],
            &call.body,
            &credentials,
            region,
            time(case["time"].as_str().unwrap()),
        )
        .unwrap();
        let expected = &case["expected"];
        let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        assert_eq!(get("authorization"), expected["authorization"].as_str(), "{name}");
        assert_eq!(get("x-amz-date"), expected["x-amz-date"].as_str(), "{name}");
        assert_eq!(
            get("x-amz-security-token"),
            expected["x-amz-security-token"].as_str(),
            "{name}"
        );
    }
    assert!(arns >= 2, "the cases include inference-profile ARNs");
}

#[test]
fn exception_codes_are_recognised_in_every_form_bedrock_sends() {
    for code in [
        "ThrottlingException",
        "throttlingException",
        "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
        "com.amazon.bedrock#ThrottlingException",
    ] {
        assert_eq!(Exception::from_code(code), Exception::Throttling, "{code}");
    }
    assert_eq!(Exception::from_code("modelStreamErrorException"), Exception::ModelStreamError);
    assert_eq!(Exception::from_code("Weird"), Exception::Other("Weird".to_owned()));
}

#[test]
fn recorded_error_responses_become_typed_errors_with_their_request_id() {
    let Some(dir) = std::env::var_os("VERBATIM_REAL_FIXTURES")
        .map(|d| Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(d))
        .or_else(|| {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/real");
            dir.is_dir().then_some(dir)
        })
    else {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipping recorded errors: VERBATIM_REAL_FIXTURES is unset");
        }
        return;
    };
    let text = std::fs::read_to_string(dir.join("errors_recorded_with_headers.json")).unwrap();
    let document: Value = serde_json::from_str(&text).unwrap();
    let errors = document["errors"].as_array().unwrap();
    assert!(!errors.is_empty());
    for recorded in errors {
        let response = &recorded["response"];
        let status = StatusCode::from_u16(response["status"].as_u64().unwrap() as u16).unwrap();
        let mut headers = HeaderMap::new();
        for (name, value) in response["headers"].as_object().unwrap() {
            headers.insert(
                HeaderName::try_from(name.as_str()).unwrap(),
                HeaderValue::from_str(value.as_str().unwrap()).unwrap(),
            );
        }
        let body = match response.get("body") {
            Some(Value::String(body)) => body.clone(),
            _ => response["body_json"].to_string(),
        };
        let error = api_error(status, &headers, &body.as_bytes().to_vec().into());
        let case = recorded["case"].as_str().unwrap();
        let header = |name: &str| {
            let headers = response["headers"].as_object().unwrap();
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str().unwrap())
        };
        let code = header("x-amzn-ErrorType").unwrap().split(':').next().unwrap();
        assert_eq!(error.exception.name(), code, "{case}");
        if status == StatusCode::BAD_REQUEST {
            assert_eq!(error.exception, Exception::Validation, "{case}");
        }
        assert!(!TransportError::Api(error.clone()).is_retryable(), "{case}");
        assert_eq!(error.status, status.as_u16(), "{case}");
        assert_eq!(error.request_id.as_deref(), header("x-amzn-RequestId"), "{case}");
        let message = serde_json::from_str::<Value>(&body).unwrap()["message"].clone();
        assert_eq!(Some(error.message.as_str()), message.as_str(), "{case}");
        let shown = error.to_string();
        assert!(
            shown.contains(error.exception.name()) && shown.contains(&error.message),
            "{shown}"
        );
    }
}

#[test]
fn the_http_200_unknown_operation_body_is_recognised() {
    let body = br#"{"Output":{"__type":"com.amazon.coral.service#UnknownOperationException"},"Version":"1.0"}"#;
    let error = unknown_operation(Api::Converse, body, Some("r-1".to_owned())).unwrap();
    assert_eq!(error.exception, Exception::UnknownOperation);
    assert_eq!(error.status, 200);
    assert!(error.message.contains("percent-encoded as one path segment"), "{}", error.message);
    let converse = br#"{"output":{"message":{"role":"assistant","content":[{"text":"UnknownOperationException"}]}}}"#;
    assert_eq!(unknown_operation(Api::Converse, converse, None), None);
}

fn api(exception: Exception, status: u16) -> TransportError {
    TransportError::Api(ApiError {
        exception,
        status,
        message: String::new(),
        request_id: None,
        retry_after: None,
    })
}

#[test]
fn only_throttling_server_and_connection_errors_are_retried() {
    use Exception::*;
    for (error, class) in [
        (api(Throttling, 429), Some(RetryClass::Throttling)),
        (api(Other("HTTP 429".into()), 429), Some(RetryClass::Throttling)),
        (api(Other("TooManyRequestsException".into()), 400), Some(RetryClass::Throttling)),
        (api(ModelNotReady, 429), Some(RetryClass::Transient)),
        (api(InternalServer, 500), Some(RetryClass::Transient)),
        (api(ServiceUnavailable, 503), Some(RetryClass::Transient)),
        (api(Other("HTTP 502".into()), 502), Some(RetryClass::Transient)),
        (api(InternalServer, 200), Some(RetryClass::Transient)),
        (api(Validation, 400), None),
        (api(AccessDenied, 403), None),
        (api(ModelTimeout, 408), None),
        (api(ModelError, 424), None),
        (api(ModelStreamError, 200), None),
        (api(ServiceQuotaExceeded, 400), None),
        (api(UnknownOperation, 200), None),
        (TransportError::Timeout { waiting_for: "the response" }, Some(RetryClass::Timeout)),
        (TransportError::Connection { message: "reset".into() }, Some(RetryClass::Transient)),
        (TransportError::Config { message: "x".into() }, None),
        // The Anthropic API's: 529 and its error types, kept as sent.
        (api(Other("overloaded_error".into()), 529), Some(RetryClass::Transient)),
        (api(Other("HTTP 529".into()), 529), Some(RetryClass::Transient)),
        (api(Other("overloaded_error".into()), 200), Some(RetryClass::Transient)),
        (api(Other("api_error".into()), 200), Some(RetryClass::Transient)),
        (api(Other("rate_limit_error".into()), 200), Some(RetryClass::Throttling)),
        (api(Other("invalid_request_error".into()), 400), None),
        (api(Other("not_found_error".into()), 404), None),
    ] {
        assert_eq!(classify(&error), class, "{error:?}");
        assert_eq!(error.is_retryable(), class.is_some());
    }
}

#[test]
fn x_should_retry_overrides_the_classification_but_never_for_an_invalid_beta_flag() {
    let overloaded = api(Exception::Other("overloaded_error".into()), 529);
    assert_eq!(decide(&overloaded, None), Some(RetryClass::Transient));
    assert_eq!(decide(&overloaded, Some(false)), None);
    let conflict = api(Exception::Other("HTTP 409".into()), 409);
    assert_eq!(decide(&conflict, None), None);
    assert_eq!(decide(&conflict, Some(true)), Some(RetryClass::Transient));
    let throttled = api(Exception::Throttling, 429);
    assert_eq!(decide(&throttled, Some(true)), Some(RetryClass::Throttling));
    let beta = TransportError::Api(ApiError {
        message: "invalid beta flag".into(),
        ..api_error_of(Exception::Validation, 400)
    });
    assert_eq!(decide(&beta, Some(true)), None);
}

fn api_error_of(exception: Exception, status: u16) -> ApiError {
    ApiError { exception, status, message: String::new(), request_id: None, retry_after: None }
}

#[test]
fn the_wait_asked_for_is_read_from_retry_after_ms_x_amz_retry_after_or_retry_after() {
    let wait = |pairs: &[(&str, &str)]| {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(
                HeaderName::try_from(*name).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        retry_after(&headers)
    };
    let ms = Duration::from_millis;
    assert_eq!(wait(&[("retry-after-ms", "250"), ("retry-after", "9")]), Some(ms(250)));
    assert_eq!(wait(&[("x-amz-retry-after", "400"), ("retry-after", "9")]), Some(ms(400)));
    assert_eq!(wait(&[("retry-after", "2")]), Some(ms(2000)));
    assert_eq!(wait(&[("retry-after", "0.5")]), Some(ms(500)));
    // An HTTP date is ignored: the backoff applies.
    assert_eq!(wait(&[("retry-after", "Wed, 21 Oct 2026 07:28:00 GMT")]), None);
    assert_eq!(wait(&[("retry-after-ms", "-5")]), None);
    assert_eq!(wait(&[]), None);
}

#[test]
fn backoff_is_full_jitter_capped_and_retry_after_is_clamped() {
    let config = RetryConfig::default();
    assert_eq!(config.delay(0, 0.0, None), Duration::ZERO);
    assert_eq!(config.delay(0, 0.5, None), Duration::from_millis(500));
    assert_eq!(config.delay(2, 0.5, None), Duration::from_secs(2));
    assert_eq!(config.delay(10, 0.999_999, None), Duration::from_secs(20).mul_f64(0.999_999));
    assert_eq!(config.delay(40, 1.0, None), Duration::from_secs(20));
    // x-amz-retry-after replaces the jitter, but not beyond the bound plus five seconds.
    assert_eq!(
        config.delay(0, 0.1, Some(Duration::from_millis(1500))),
        Duration::from_millis(1500)
    );
    assert_eq!(config.delay(0, 0.1, Some(Duration::from_secs(60))), Duration::from_secs(6));
    for _ in 0..1000 {
        let random = crate::retry::jitter();
        assert!((0.0..1.0).contains(&random));
    }
}

#[test]
fn the_retry_budget_runs_out_and_refills() {
    let bucket = TokenBucket::new(12);
    assert!(bucket.acquire(5));
    assert!(bucket.acquire(5));
    assert!(!bucket.acquire(5), "2 tokens left");
    assert_eq!(bucket.available(), 2);
    bucket.refund(5);
    bucket.refund(100);
    assert_eq!(bucket.available(), 12, "never above its size");
}

#[test]
fn secrets_never_show_in_debug_output() {
    let key = "ABSKQmVkcm9ja0FQSUtleS1zZWNyZXQ=";
    let secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let token = "IQoJb3JpZ2luX2VjEXAMPLETOKEN";
    let shown = [
        format!("{:?}", Secret::new(key)),
        format!("{}", Secret::new(key)),
        format!("{:?}", Auth::api_key(key)),
        format!("{:?}", Auth::credentials("AKIDEXAMPLE", secret_key, Some(Secret::new(token)))),
        format!("{:?}", HttpConfig::new("us-east-1", Auth::api_key(key))),
        format!(
            "{:?}",
            HttpTransport::new(HttpConfig::new("us-east-1", Auth::api_key(key))).unwrap()
        ),
        format!(
            "{:?}",
            HttpConfig::new("us-east-1", Auth::credentials("AKID", secret_key, Some(token.into())))
        ),
    ];
    for text in shown {
        for secret in [key, secret_key, token] {
            assert!(!text.contains(secret), "{text}");
        }
    }
}

#[test]
fn an_api_key_is_refused_over_plain_http_except_to_loopback() {
    let transport = |url: &str, auth: Auth| {
        HttpTransport::new(HttpConfig::new("us-east-1", auth).with_endpoint_url(url))
    };
    let refused = transport("http://bedrock.example.com", Auth::api_key("k")).unwrap_err();
    assert!(refused.to_string().contains("only over HTTPS"), "{refused}");
    for url in
        ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9", "https://x.example"]
    {
        assert!(transport(url, Auth::api_key("k")).is_ok(), "{url}");
    }
    // SigV4 never sends a secret, so plain HTTP is allowed (a local emulator, a proxy).
    assert!(transport("http://bedrock.example.com", Auth::credentials("a", "b", None)).is_ok());
    for (url, says) in
        [("ftp://x", "scheme"), ("not a url", "not a URL"), ("https://x/?a=1", "query")]
    {
        let error = transport(url, Auth::credentials("a", "b", None)).unwrap_err();
        assert!(error.to_string().contains(says), "{url}: {error}");
    }
    let error = HttpTransport::new(HttpConfig::new("US East", Auth::api_key("k"))).unwrap_err();
    assert!(error.to_string().contains("not an AWS region name"), "{error}");
    // The mantle endpoint is held to the same rule.
    let mantle = |url: &str| {
        HttpTransport::new(
            HttpConfig::new("us-east-1", Auth::api_key("k")).with_mantle_endpoint_url(url),
        )
    };
    let refused = mantle("http://mantle.example.com").unwrap_err();
    assert!(refused.to_string().contains("only over HTTPS"), "{refused}");
    assert!(mantle("http://127.0.0.1:8080").is_ok());
}

#[test]
fn model_ids_and_arns_become_one_path_segment() {
    let arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123";
    assert_eq!(
        Call::new(Api::InvokeModel, arn, "{}").path(true),
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fabc123/invoke-with-response-stream"
    );
    assert_eq!(Call::new(Api::Converse, "m", "{}").path(false), "/model/m/converse");
}

#[tokio::test]
async fn the_scripted_transport_replays_in_order_and_records_calls() {
    let transport = ScriptedTransport::new();
    transport
        .push_reply("{\"a\":1}")
        .push_events([("messageStart", "{\"role\":\"assistant\"}"), ("messageStop", "{}")])
        .push(Scripted::Events(vec![
            Ok(crate::StreamEvent { event_type: "messageStart".into(), payload: "{}".into() }),
            Err(api(Exception::ModelStreamError, 200)),
            Ok(crate::StreamEvent { event_type: "never".into(), payload: "{}".into() }),
        ]))
        .push_error(api(Exception::Validation, 400));
    let reply = transport.send(Call::new(Api::Converse, "m", "one")).await.unwrap();
    assert_eq!(&reply.body[..], b"{\"a\":1}");
    let mut events = transport.stream(Call::new(Api::Converse, "m", "two")).await.unwrap();
    assert_eq!(events.next().await.unwrap().unwrap().event_type, "messageStart");
    assert_eq!(events.next().await.unwrap().unwrap().event_type, "messageStop");
    assert!(events.next().await.is_none());
    let mut broken = transport.stream(Call::new(Api::Converse, "m", "three")).await.unwrap();
    assert!(broken.next().await.unwrap().is_ok());
    assert!(broken.next().await.unwrap().is_err());
    assert!(broken.next().await.is_none(), "nothing after the error");
    let error = transport.send(Call::new(Api::InvokeModel, "m", "four")).await.unwrap_err();
    assert_eq!(error.api().unwrap().exception, Exception::Validation);
    // Like the HTTP transport, a stream failing before its first event fails the call.
    transport.push(Scripted::Events(vec![Err(api(Exception::Throttling, 429))]));
    transport.push(Scripted::Events(Vec::new()));
    let error = transport.stream(Call::new(Api::Converse, "m", "x")).await.unwrap_err();
    assert_eq!(error.api().unwrap().exception, Exception::Throttling);
    assert!(transport.stream(Call::new(Api::Converse, "m", "y")).await.is_err());
    let error = transport.send(Call::new(Api::Converse, "m", "five")).await.unwrap_err();
    assert!(error.to_string().contains("no answer left"), "{error}");
    let bodies: Vec<_> = transport.calls().iter().map(|c| c.body.clone()).collect();
    assert_eq!(bodies, ["one", "two", "three", "four", "x", "y", "five"]);
    assert_eq!(transport.remaining(), 0);
}

#[test]
fn an_echoed_canonical_request_never_carries_the_session_token_into_an_error() {
    let body = "{\"message\":\"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\\n\\nThe Canonical String for this request should have been\\n'POST\\n/model/m/converse\\n\\ncontent-type:application/json\\nhost:bedrock-runtime.us-east-1.amazonaws.com\\nx-amz-date:20261122T000000Z\\nx-amz-security-token:IQoJb3JpZ2luSECRET\\n'\"}";
    let mut headers = HeaderMap::new();
    headers.insert("x-amzn-errortype", HeaderValue::from_static("InvalidSignatureException"));
    let error = api_error(StatusCode::FORBIDDEN, &headers, &body.as_bytes().to_vec().into());
    assert!(!error.to_string().contains("IQoJb3JpZ2luSECRET"), "{error}");
    assert!(error.message.starts_with("The request signature we calculated does not match"));
    assert!(error.message.ends_with("[canonical request left out]"), "{}", error.message);
}

#[tokio::test]
async fn zero_attempts_means_one_and_a_huge_budget_never_overflows() {
    let bucket = TokenBucket::new(u32::MAX);
    bucket.refund(1);
    assert_eq!(bucket.available(), u32::MAX);
    let config = HttpConfig::new("us-east-1", Auth::api_key("k"))
        .with_endpoint_url("http://127.0.0.1:9")
        .with_retry(RetryConfig { max_attempts: 0, ..RetryConfig::default() });
    // Port 9 (discard) refuses the connection: one attempt, a connection error, no panic.
    let error = HttpTransport::new(config).unwrap().send(Call::new(Api::Converse, "m", "{}")).await;
    assert!(matches!(error, Err(TransportError::Connection { .. })), "{error:?}");
}
