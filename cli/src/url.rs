//! Requests to `submit`'s function URL (`AuthType: AWS_IAM`, docs/access.md): a JSON `POST`
//! signed with SigV4 for the service `lambda` ("Invoking Lambda function URLs": a URL with
//! `AWS_IAM` takes requests signed as for Lambda), with the caller's credentials from the
//! standard chain. The function answers JSON with an HTTP status; a 4xx/5xx carries
//! `{"error_type", "message"}`, and Lambda's own refusals (a bad signature, no permission)
//! carry `{"Message"}`.

use std::time::SystemTime;

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use serde_json::Value;

use crate::Failure;

/// The function's answer: its HTTP status and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The body as `T` on a 200; otherwise the refusal as a failure.
    pub fn decode<T: serde::de::DeserializeOwned>(self) -> Result<T, Failure> {
        if self.status == 200 {
            return serde_json::from_value(self.body.clone()).map_err(|e| {
                Failure::new(format!(
                    "the function URL answered what ferry cannot read: {e}: {}",
                    self.body
                ))
            });
        }
        let error_type = self.body["error_type"].as_str();
        let message = self.body["message"]
            .as_str()
            .or_else(|| self.body["Message"].as_str())
            .unwrap_or("(no message)");
        // Ferry's own refusals read as the same error without a URL would (`not found: …`,
        // `access denied: …`); Lambda's name the status.
        Err(Failure::new(match error_type {
            Some(_) => message.to_owned(),
            None => format!("refused by Lambda (HTTP {}): {message}", self.status),
        }))
    }
}

/// `POST`s `body` to `url`, signed with `aws`'s credentials and region.
pub async fn post(aws: &aws_config::SdkConfig, url: &str, body: &Value) -> Result<Answer, Failure> {
    let region = aws
        .region()
        .ok_or_else(|| Failure::new("no AWS region: set AWS_REGION (the function URL's region)"))?
        .to_string();
    let credentials = aws
        .credentials_provider()
        .ok_or_else(|| Failure::new("no AWS credentials to sign the request with"))?
        .provide_credentials()
        .await
        .map_err(|e| Failure::new(format!("no AWS credentials to sign the request with: {e}")))?;
    let identity: Identity = credentials.into();
    let text = body.to_string();
    let mut request = http::Request::builder()
        .method("POST")
        .uri(url)
        .header("content-type", "application/json")
        .body(text.clone())
        .map_err(|e| Failure::new(format!("--url {url}: {e}")))?;
    let host = request
        .uri()
        .authority()
        .map(ToString::to_string)
        .ok_or_else(|| Failure::new(format!("--url {url}: not an absolute URL")))?;
    request.headers_mut().insert(
        "host",
        host.parse()
            .map_err(|_| Failure::new(format!("--url {url}: bad host")))?,
    );
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("lambda")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| Failure::new(format!("cannot sign the request: {e}")))?
        .into();
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str(), value.to_str().unwrap_or_default()));
    let signable = SignableRequest::new("POST", url, headers, SignableBody::Bytes(text.as_bytes()))
        .map_err(|e| Failure::new(format!("cannot sign the request: {e}")))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| Failure::new(format!("cannot sign the request: {e}")))?
        .into_parts();
    instructions.apply_to_request_http1x(&mut request);
    send(request.map(SdkBody::from), url).await
}

async fn send(request: http::Request<SdkBody>, url: &str) -> Result<Answer, Failure> {
    let connector = aws_smithy_http_client::Connector::builder()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build();
    let request = request
        .try_into()
        .map_err(|e| Failure::new(format!("--url {url}: {e}")))?;
    let response = connector
        .call(request)
        .await
        .map_err(|e| Failure::new(format!("{url}: {e}")))?;
    let status = response.status().as_u16();
    let bytes = ByteStream::new(response.into_body())
        .collect()
        .await
        .map_err(|e| Failure::new(format!("{url}: reading the answer: {e}")))?
        .into_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(
        |_| serde_json::json!({"Message": String::from_utf8_lossy(&bytes).into_owned()}),
    );
    Ok(Answer { status, body })
}
