//! Runs expensive signing jobs on tokio's blocking pool, at most one per core at a time, so the
//! async workers stay free to answer other requests (health checks, cheap signatures).

use std::sync::Arc;

use async_trait::async_trait;
use signet_core::offload::{Offload, SignJob};
use signet_core::{CoreError, ErrorCode};
use tokio::sync::Semaphore;

#[derive(Debug, Clone)]
pub struct BlockingPool {
    permits: Arc<Semaphore>,
}

impl BlockingPool {
    /// A pool as wide as the machine's parallelism.
    pub fn per_core() -> Self {
        let n = std::thread::available_parallelism().map_or(2, usize::from);
        BlockingPool {
            permits: Arc::new(Semaphore::new(n)),
        }
    }
}

#[async_trait]
impl Offload for BlockingPool {
    async fn run(&self, job: SignJob) -> Result<Vec<Vec<u8>>, CoreError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|e| CoreError::internal("signing pool closed", e))?;
        // The permit lives as long as the job, even if the request is dropped meanwhile.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await
        .map_err(|e| CoreError::new(ErrorCode::Internal, format!("signing task failed: {e}")))?
    }
}
