//! The embedded default: workers in this process, on an in-memory queue.

use crate::config::{StartError, WorkerConfig};
use crate::jobs::{INBOUND_CONCURRENCY, inbound_job, send_job};
use crate::supervise::{Parts, Workers, log_end, stopped};
use crate::{BULK_WORKER, INBOUND_WORKER, InProcessQueue, SEND_WORKER, rate};
use apalis::prelude::{WorkerBuilder, WorkerBuilderExt};
use gatehouse_store::Store;
use gatehouse_store::queue::JobQueue;
use std::sync::Arc;

/// Starts the workers in this process on an in-memory queue, attaches that queue to
/// `store`, and starts the periodic jobs. Must be called inside a tokio runtime.
pub fn spawn_in_process(store: Store, config: WorkerConfig) -> Result<Workers, StartError> {
    let parts = Parts::new(&store, &config, rate::SendRates::local(config.send_rates))?;
    let queue = InProcessQueue::with_fair_burst(config.fair_burst);
    store.attach_queue(Arc::new(queue.clone()));

    let (deps, concurrency) = (parts.send.clone(), parts.concurrency);
    let send = WorkerBuilder::new(SEND_WORKER)
        .backend(queue.backend())
        .data(deps)
        .concurrency(concurrency)
        .enable_tracing()
        .build(send_job);
    let bulk = WorkerBuilder::new(BULK_WORKER)
        .backend(queue.bulk_backend())
        .data(parts.send.clone())
        .concurrency(rate::bulk_concurrency(concurrency))
        .enable_tracing()
        .build(send_job);
    let inbound = WorkerBuilder::new(INBOUND_WORKER)
        .backend(queue.inbound_backend())
        .data(parts.inbound.clone())
        .concurrency(INBOUND_CONCURRENCY)
        .enable_tracing()
        .build(inbound_job);
    // The in-memory queue cannot fail, so these run once, to the stop signal.
    let workers = vec![
        parts
            .runtime
            .spawn(log_end(SEND_WORKER, send.run_until(stopped(&parts.stop)))),
        parts
            .runtime
            .spawn(log_end(BULK_WORKER, bulk.run_until(stopped(&parts.stop)))),
        parts.runtime.spawn(log_end(
            INBOUND_WORKER,
            inbound.run_until(stopped(&parts.stop)),
        )),
    ];
    let queue: Arc<dyn JobQueue> = Arc::new(queue);
    let periodic = parts.periodic(&store, &config, queue.clone());
    Ok(parts.into_workers(queue, workers, periodic, &config))
}
