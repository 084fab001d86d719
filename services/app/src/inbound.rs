//! A verified SNS message arriving at the webhook (D3, D4, D6): recorded once by its
//! MessageId, then handed to a worker. Processing happens there, once per message.

use crate::{Result, Store};
use gatehouse_store::inbound::NewInbound;

/// The SNS webhook's use case.
#[derive(Debug)]
pub struct Inbound<'a> {
    pub(crate) store: &'a Store,
}

impl Inbound<'_> {
    /// Records `message` and queues its processing; `false` when its MessageId was seen
    /// before (SNS delivers at least once), and nothing is queued again. A failed push is
    /// logged only: the recorded row is durable, and the periodic job processes what no
    /// job took.
    pub async fn receive(&self, message: NewInbound<'_>) -> Result<bool> {
        let message_id = message.message_id;
        let new = self.store.record_inbound(message).await?;
        if new {
            self.store.enqueue_inbound(message_id).await;
        } else {
            tracing::info!(message_id, "SNS webhook: duplicate MessageId ignored");
        }
        Ok(new)
    }
}
