//! `POST /v1/webhooks/aws/sns`: SES events and inbound SMS, delivered by SNS (D6).

use crate::error::{ApiError, Problem};
use crate::sns::SnsKind;
use crate::state::ApiState;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use gatehouse_store::inbound::NewInbound;

/// Receives an SNS message. Only a message of one of the deployment's topics with a valid
/// SNS signature from an allow-listed certificate URL is accepted (else 403, nothing is
/// recorded and nothing changes); the message is recorded once by
/// MessageId and its processing queued, so the answer comes quickly and a redelivery
/// has no second effect.
#[utoipa::path(post, path = "/v1/webhooks/aws/sns", tag = "webhooks",
    request_body(content = String, description = "The SNS message (JSON, sent as text/plain)"),
    responses(
        (status = 200, description = "Accepted (or a duplicate, which changes nothing)"),
        (status = 400, description = "bad_request: not an SNS message", body = Problem),
        (status = 403, description = "forbidden: the message is not of one of our topics, or its signature does not verify", body = Problem),
    ))]
pub async fn sns(st: web::Data<ApiState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let msg = match st.sns.verify(&body).await {
        Ok(m) => m,
        Err(e) if e.is_malformed() => {
            tracing::warn!(error = %e, "SNS webhook: not an SNS message");
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "Not an SNS message",
                "The body is not an Amazon SNS HTTP message.",
            ));
        }
        Err(e) => {
            tracing::warn!(reason = e.kind(), error = %e, "SNS webhook: message refused");
            return Err(ApiError::forbidden(
                "The message could not be verified as an SNS message of one of this deployment's topics.",
            ));
        }
    };
    let subscribe_url = match &msg.kind {
        SnsKind::SubscriptionConfirmation { subscribe_url, .. }
        | SnsKind::UnsubscribeConfirmation { subscribe_url, .. } => Some(subscribe_url.as_str()),
        SnsKind::Notification { .. } => None,
    };
    st.app
        .inbound()
        .receive(NewInbound {
            message_id: &msg.message_id,
            sns_type: msg.message_type().as_str(),
            topic_arn: &msg.topic_arn,
            message: &msg.message,
            subscribe_url,
        })
        .await?;
    Ok(HttpResponse::Ok().finish())
}
