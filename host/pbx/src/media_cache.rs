//! Decoded audio for `say` and `play`, produced off the async threads and shared between calls.
//!
//! Speech synthesis and file decoding are blocking and slow (milliseconds to seconds), so they
//! run on tokio's blocking pool; the results are `Arc<Pcm>` at the leg's rate so that a prompt
//! every caller hears is synthesised or decoded once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use pbx_media::pcm::Pcm;
use pbx_media::tts::Tts;

/// How many decoded files we keep; uploads are prompts and music, reused across calls.
const FILE_CACHE_ENTRIES: usize = 64;

/// Shared producer of audio clips for the players.
pub struct MediaCache {
    tts: Arc<Tts>,
    store: Arc<pbx_store::Store>,
    files: Mutex<HashMap<(String, u32), Arc<Pcm>>>,
}

impl MediaCache {
    /// Creates the cache over a speech engine and the file store.
    pub fn new(tts: Arc<Tts>, store: Arc<pbx_store::Store>) -> Self {
        MediaCache {
            tts,
            store,
            files: Mutex::new(HashMap::new()),
        }
    }

    /// Speaks `text` at `rate` Hz.
    pub async fn say(
        &self,
        text: String,
        language: Option<String>,
        voice: Option<String>,
        rate: u32,
    ) -> Result<Arc<Pcm>, String> {
        let tts = self.tts.clone();
        tokio::task::spawn_blocking(move || {
            tts.speak(&text, language.as_deref(), voice.as_deref(), rate)
                .map_err(|err| err.to_string())
        })
        .await
        .map_err(|err| format!("speech task failed: {err}"))?
    }

    /// Decodes an uploaded file at `rate` Hz.
    pub async fn file(&self, id: &str, rate: u32) -> Result<Arc<Pcm>, String> {
        let key = (id.to_string(), rate);
        if let Some(pcm) = self.lock().get(&key) {
            return Ok(pcm.clone());
        }
        let store = self.store.clone();
        let file_id = id.to_string();
        let pcm = tokio::task::spawn_blocking(move || {
            let bytes = store
                .file_bytes(&file_id)
                .map_err(|err| format!("cannot read file {file_id}: {err}"))?;
            pbx_media::audiofile::decode_at(&bytes, rate)
                .map(Arc::new)
                .map_err(|err| format!("cannot decode file {file_id}: {err}"))
        })
        .await
        .map_err(|err| format!("decode task failed: {err}"))??;
        let mut files = self.lock();
        if files.len() >= FILE_CACHE_ENTRIES {
            // Files rarely change working set; dropping everything keeps this simple and bounded.
            files.clear();
        }
        files.insert(key, pcm.clone());
        Ok(pcm)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u32), Arc<Pcm>>> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
