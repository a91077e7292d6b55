//! How documents are kept on disk: each is a zstd frame, written with a dictionary trained from
//! the store's own documents of the same kind once there are enough of them.
//!
//! A frame names the dictionary it was written with in its own header (zstd's dictionary id, which
//! we set to the dictionary's id in the store), so no column has to, and a frame read with the
//! wrong dictionary fails to decode instead of yielding wrong text. Dictionaries are kept in the
//! store, never changed or deleted, each with the SHA-256 of its bytes; a new one is trained when
//! the documents being written compress clearly worse than they did just after the current one
//! was made (the data drifted), from the documents that follow. Documents are gathered as
//! samples only while a dictionary is wanted, so a store whose dictionaries fit its documents
//! holds none.
//!
//! A record's sessions and participants are kept in parts of up to `PartKind::per_part` items,
//! each part one frame: documents compress better together, and a record costs a few keys
//! rather than one per session.
//!
//! Never: SQL or IO. The backends store what this returns and hand back what they stored.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};
use zstd::dict::{DecoderDictionary, EncoderDictionary};
use zstd::zstd_safe::{CCtx, DCtx};

use super::{PreparedRecord, Timestamp};

/// zstd's level for documents. Level 3 (zstd's default) compresses these documents within a few
/// percent of level 9 at a third of the CPU, with a dictionary; ingest pays it on every record.
const LEVEL: i32 = 3;

/// The size of a dictionary trained from a full sample.
const DICTIONARY_BYTES: usize = 64 * 1024;

/// How much of one kind's documents a full-size dictionary is trained from. zstd wants about a
/// hundred times the dictionary's size in samples.
const SAMPLE_BYTES: usize = 6 * 1024 * 1024;

/// The first dictionary of a kind is trained as soon as this much is sampled, smaller (a
/// thirty-second of the sample), so that a young store does not write thousands of records
/// without one; a full-size dictionary replaces it once the sample is full.
const FIRST_SAMPLE_BYTES: usize = 1024 * 1024;

/// Samples of fewer than this many documents train no dictionary.
const MIN_SAMPLES: usize = 64;

/// How many bytes of documents each measurement of the compression ratio spans.
const RATIO_WINDOW_BYTES: u64 = 4 * 1024 * 1024;

/// A window that compresses this much worse (larger output) than the first window after the
/// current dictionary was made asks for a new dictionary.
const DRIFT_TOLERANCE: f64 = 1.25;

/// The zstd dictionary format's magic number; the dictionary id is the four bytes after it.
const DICTIONARY_MAGIC: [u8; 4] = [0x37, 0xA4, 0x30, 0xEC];

/// Which documents a dictionary is trained on and used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum DocumentKind {
    /// A call record without its sessions and participants.
    Record,
    /// A session with its segments inline.
    Session,
    Participant,
}

impl DocumentKind {
    pub(crate) const ALL: [DocumentKind; 3] = [Self::Record, Self::Session, Self::Participant];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Record => "record",
            Self::Session => "session",
            Self::Participant => "participant",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// Which of a record's collections a part holds, as stored in `record_part.kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum PartKind {
    Sessions,
    Participants,
}

impl PartKind {
    pub(crate) fn code(self) -> i64 {
        match self {
            Self::Sessions => 0,
            Self::Participants => 1,
        }
    }

    /// Items a part holds at most: a page of the collection as Graph pages it, so the first page
    /// (and the `$expand`) reads one part.
    pub(crate) fn per_part(self) -> usize {
        match self {
            Self::Sessions => 60,
            Self::Participants => 130,
        }
    }

    fn document_kind(self) -> DocumentKind {
        match self {
            Self::Sessions => DocumentKind::Session,
            Self::Participants => DocumentKind::Participant,
        }
    }

    /// The first ordinal of the part holding `ordinal`.
    pub(crate) fn part_start(self, ordinal: i64) -> i64 {
        let per_part = self.per_part() as i64;
        ordinal.max(0) / per_part * per_part
    }
}

/// A dictionary as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredDictionary {
    pub(crate) id: u32,
    pub(crate) kind: DocumentKind,
    /// The zstd dictionary, its header naming `id`.
    pub(crate) body: Vec<u8>,
    /// SHA-256 of `body`, hex, checked whenever the store is opened.
    pub(crate) sha256: String,
    pub(crate) created: Timestamp,
}

impl StoredDictionary {
    /// A trained dictionary given its id in the store: the id is written into its header, which
    /// zstd then writes into every frame compressed with it.
    pub(crate) fn new(id: u32, kind: DocumentKind, mut body: Vec<u8>, created: Timestamp) -> Self {
        if body.len() >= 8 && body[..4] == DICTIONARY_MAGIC {
            body[4..8].copy_from_slice(&id.to_le_bytes());
        }
        let sha256 = hex(&Sha256::digest(&body));
        Self {
            id,
            kind,
            body,
            sha256,
            created,
        }
    }

    /// Why this dictionary cannot be trusted, if it cannot.
    fn check(&self) -> Result<(), CodecError> {
        if hex(&Sha256::digest(&self.body)) != self.sha256 {
            return Err(CodecError::CorruptDictionary(
                self.id,
                "its bytes do not match their SHA-256".into(),
            ));
        }
        let named = zstd::zstd_safe::get_dict_id_from_dict(&self.body).map(|id| id.get());
        if named != Some(self.id) {
            return Err(CodecError::CorruptDictionary(
                self.id,
                format!("its header names dictionary {named:?}"),
            ));
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum CodecError {
    #[error("a stored document was written with dictionary {0}, which the store does not hold")]
    UnknownDictionary(u32),
    #[error("dictionary {0} of the store is corrupt: {1}")]
    CorruptDictionary(u32, String),
    #[error("the store's dictionaries are incomplete: dictionary {0} is missing")]
    MissingDictionary(u32),
    #[error("a stored document does not decode: {0}")]
    CorruptDocument(String),
    #[error("training a dictionary failed: {0}")]
    Training(String),
}

/// One record's documents as stored: the record's frame, its parts, and the participant ids that
/// the participant filter indexes.
#[derive(Clone, Debug)]
pub(crate) struct CompressedRecord {
    pub(crate) document: Vec<u8>,
    pub(crate) parts: Vec<CompressedPart>,
}

#[derive(Clone, Debug)]
pub(crate) struct CompressedPart {
    pub(crate) kind: PartKind,
    pub(crate) first_ordinal: i64,
    pub(crate) body: Vec<u8>,
}

/// The dictionaries in use, and what decides when to train the next.
#[derive(Debug, Default)]
pub(crate) struct Codec {
    state: RwLock<CodecState>,
}

#[derive(Default)]
struct CodecState {
    decoders: HashMap<u32, Arc<DecoderDictionary<'static>>>,
    /// The newest dictionary of each kind, which writes use.
    encoders: HashMap<DocumentKind, Encoder>,
    training: HashMap<DocumentKind, Training>,
}

impl std::fmt::Debug for CodecState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<_> = self.decoders.keys().collect();
        ids.sort();
        formatter
            .debug_struct("CodecState")
            .field("dictionaries", &ids)
            .finish()
    }
}

/// A dictionary ready for compression.
#[derive(Clone)]
struct Encoder {
    id: u32,
    dictionary: Arc<EncoderDictionary<'static>>,
    /// The dictionary's size: one smaller than `DICTIONARY_BYTES` came from a small sample.
    bytes: usize,
}

/// Documents gathered to train a dictionary from, end to end, as zstd's trainer takes them.
#[derive(Default)]
pub(crate) struct Sample {
    bytes: Vec<u8>,
    sizes: Vec<usize>,
}

impl Sample {
    fn add(&mut self, document: &[u8]) {
        self.bytes.extend_from_slice(document);
        self.sizes.push(document.len());
    }

    /// Whether it is enough to train a dictionary when `target` bytes are wanted.
    fn reaches(&self, target: usize) -> bool {
        self.sizes.len() >= MIN_SAMPLES && self.bytes.len() >= target
    }
}

impl<T: AsRef<[u8]>> FromIterator<T> for Sample {
    fn from_iter<I: IntoIterator<Item = T>>(documents: I) -> Self {
        let mut sample = Sample::default();
        for document in documents {
            sample.add(document.as_ref());
        }
        sample
    }
}

/// The sample of one kind's documents being gathered, and how well the current dictionary
/// compresses them.
#[derive(Default)]
struct Training {
    sample: Sample,
    /// Compressed bytes per input byte in the first window after the current dictionary was
    /// installed; `None` until that window is complete.
    baseline: Option<f64>,
    window_in: u64,
    window_out: u64,
    /// A window drifted past the tolerance: gather a full sample and train from it.
    drifted: bool,
    /// A full-size dictionary was asked for since this process started, so a small one is not
    /// replaced again and again when training keeps giving less than asked.
    grown: bool,
}

impl Training {
    fn measure(&mut self, raw: usize, compressed: usize) {
        self.window_in += raw as u64;
        self.window_out += compressed as u64;
        if self.window_in < RATIO_WINDOW_BYTES {
            return;
        }
        let ratio = self.window_out as f64 / self.window_in as f64;
        match self.baseline {
            None => self.baseline = Some(ratio),
            Some(baseline) if ratio > baseline * DRIFT_TOLERANCE => self.drifted = true,
            Some(_) => {}
        }
        self.window_in = 0;
        self.window_out = 0;
    }
}

thread_local! {
    static COMPRESSOR: RefCell<Option<(CCtx<'static>, Vec<u8>)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<DCtx<'static>>> = const { RefCell::new(None) };
}

impl Codec {
    /// A codec with the store's dictionaries, which `check` has passed.
    pub(crate) fn with_dictionaries(dictionaries: &[StoredDictionary]) -> Self {
        let codec = Codec::default();
        for dictionary in dictionaries {
            codec.install(dictionary);
        }
        codec
    }

    /// Whether the store's dictionaries can be trusted: each one's bytes as stored, and every id
    /// from 1 to `issued` (the newest ever stored; dictionaries are numbered from 1 and never
    /// deleted) present, so that a damaged store is refused when it is opened rather than
    /// failing one read at a time.
    pub(crate) fn check(dictionaries: &[StoredDictionary], issued: u32) -> Result<(), CodecError> {
        let mut ids: Vec<u32> = dictionaries.iter().map(|dictionary| dictionary.id).collect();
        ids.sort_unstable();
        let newest = ids.last().copied().unwrap_or(0).max(issued);
        let mut present = ids.iter().peekable();
        for expected in 1..=newest {
            if present.next_if_eq(&&expected).is_none() {
                return Err(CodecError::MissingDictionary(expected));
            }
        }
        dictionaries.iter().try_for_each(StoredDictionary::check)
    }

    /// Makes a dictionary available for reading and, when it is the newest of its kind, for
    /// writing.
    pub(crate) fn install(&self, dictionary: &StoredDictionary) {
        let mut state = self.state.write().expect("codec lock");
        state
            .decoders
            .insert(dictionary.id, Arc::new(DecoderDictionary::copy(&dictionary.body)));
        let newer = state
            .encoders
            .get(&dictionary.kind)
            .is_none_or(|current| current.id < dictionary.id);
        if newer {
            let encoder = Encoder {
                id: dictionary.id,
                dictionary: Arc::new(EncoderDictionary::copy(&dictionary.body, LEVEL)),
                bytes: dictionary.body.len(),
            };
            state.encoders.insert(dictionary.kind, encoder);
            let training = state.training.entry(dictionary.kind).or_default();
            training.baseline = None;
            training.window_in = 0;
            training.window_out = 0;
            training.drifted = false;
        }
    }

    #[cfg(test)]
    /// The id of the dictionary that writes of `kind` use now, if any.
    pub(crate) fn current_dictionary(&self, kind: DocumentKind) -> Option<u32> {
        let state = self.state.read().expect("codec lock");
        state.encoders.get(&kind).map(|encoder| encoder.id)
    }

    /// Gathers the batch's documents into the samples of the kinds that want a dictionary, and
    /// returns, for each kind whose sample is then enough, the sample to train it from: a kind
    /// with none yet once `FIRST_SAMPLE_BYTES` are gathered; a kind whose dictionary came from a
    /// small sample, and one whose documents drifted away from its dictionary, once
    /// `SAMPLE_BYTES` are. Other kinds keep no sample.
    pub(crate) fn training_due(&self, batch: &[PreparedRecord]) -> Vec<(DocumentKind, Sample)> {
        let mut state = self.state.write().expect("codec lock");
        let state = &mut *state;
        let mut due = Vec::new();
        for kind in DocumentKind::ALL {
            let current_bytes = state.encoders.get(&kind).map(|encoder| encoder.bytes);
            let training = state.training.entry(kind).or_default();
            let (target, growing) = match current_bytes {
                None => (FIRST_SAMPLE_BYTES, false),
                Some(bytes) if bytes < DICTIONARY_BYTES && !training.grown => (SAMPLE_BYTES, true),
                Some(_) if training.drifted => (SAMPLE_BYTES, false),
                Some(_) => {
                    training.sample = Sample::default();
                    continue;
                }
            };
            let documents: Box<dyn Iterator<Item = &str>> = match kind {
                DocumentKind::Record => Box::new(batch.iter().map(|record| record.document.as_str())),
                DocumentKind::Session => Box::new(
                    batch
                        .iter()
                        .flat_map(|record| record.sessions.iter().map(|(_, document)| document.as_str())),
                ),
                DocumentKind::Participant => Box::new(
                    batch
                        .iter()
                        .flat_map(|record| record.participants.iter().map(|(_, document)| document.as_str())),
                ),
            };
            for document in documents {
                if training.sample.reaches(target) || training.sample.bytes.len() >= SAMPLE_BYTES {
                    break;
                }
                training.sample.add(document.as_bytes());
            }
            if training.sample.reaches(target) {
                training.grown |= growing;
                training.drifted = false;
                training.baseline = None;
                due.push((kind, std::mem::take(&mut training.sample)));
            }
        }
        due
    }

    #[cfg(test)]
    /// How many bytes of `kind`'s documents are gathered towards its next dictionary.
    pub(crate) fn sampled_bytes(&self, kind: DocumentKind) -> usize {
        let state = self.state.read().expect("codec lock");
        state
            .training
            .get(&kind)
            .map_or(0, |training| training.sample.bytes.len())
    }

    /// Compresses a batch with the current dictionaries, and counts how well they did.
    pub(crate) fn compress_batch(&self, batch: &[PreparedRecord]) -> Vec<CompressedRecord> {
        let encoders = {
            let state = self.state.read().expect("codec lock");
            state.encoders.clone()
        };
        let mut totals: HashMap<DocumentKind, (usize, usize)> = HashMap::new();
        let mut count = |kind: DocumentKind, raw: usize, compressed: usize| {
            let total = totals.entry(kind).or_default();
            total.0 += raw;
            total.1 += compressed;
        };
        let compressed = batch
            .iter()
            .map(|record| {
                let document = compress(encoders.get(&DocumentKind::Record), record.document.as_bytes());
                count(DocumentKind::Record, record.document.len(), document.len());
                let mut parts = Vec::new();
                for (part_kind, items) in [
                    (PartKind::Sessions, &record.sessions),
                    (PartKind::Participants, &record.participants),
                ] {
                    let kind = part_kind.document_kind();
                    for (index, chunk) in items.chunks(part_kind.per_part()).enumerate() {
                        let framed = frame_part(chunk);
                        let body = compress(encoders.get(&kind), &framed);
                        count(kind, framed.len(), body.len());
                        parts.push(CompressedPart {
                            kind: part_kind,
                            first_ordinal: (index * part_kind.per_part()) as i64,
                            body,
                        });
                    }
                }
                CompressedRecord { document, parts }
            })
            .collect();
        let mut state = self.state.write().expect("codec lock");
        for (kind, (raw, out)) in totals {
            if encoders.contains_key(&kind) {
                state.training.entry(kind).or_default().measure(raw, out);
            }
        }
        compressed
    }

    /// A stored document's text.
    pub(crate) fn decode(&self, frame: &[u8]) -> Result<String, CodecError> {
        let bytes = self.decompress(frame)?;
        String::from_utf8(bytes).map_err(|error| CodecError::CorruptDocument(error.to_string()))
    }

    /// A stored part's items, `(id, document)`, in order.
    pub(crate) fn decode_part(&self, frame: &[u8]) -> Result<Vec<(String, String)>, CodecError> {
        unframe_part(&self.decompress(frame)?)
    }

    fn decompress(&self, frame: &[u8]) -> Result<Vec<u8>, CodecError> {
        let corrupt = |what: &str| CodecError::CorruptDocument(what.to_owned());
        let size = zstd::zstd_safe::get_frame_content_size(frame)
            .map_err(|_| corrupt("not a zstd frame"))?
            .ok_or_else(|| corrupt("the frame does not say its size"))?;
        let size = usize::try_from(size).map_err(|_| corrupt("the frame's size is too large"))?;
        let decoder = match zstd::zstd_safe::get_dict_id_from_frame(frame) {
            None => None,
            Some(id) => {
                let state = self.state.read().expect("codec lock");
                Some(
                    state
                        .decoders
                        .get(&id.get())
                        .cloned()
                        .ok_or(CodecError::UnknownDictionary(id.get()))?,
                )
            }
        };
        let mut output = Vec::with_capacity(size);
        DECOMPRESSOR.with(|cell| {
            let mut cell = cell.borrow_mut();
            let context = cell.get_or_insert_with(DCtx::create);
            let written = match &decoder {
                Some(dictionary) => context.decompress_using_ddict(&mut output, frame, dictionary.as_ddict()),
                None => context.decompress(&mut output, frame),
            };
            match written {
                Ok(written) if written == size => Ok(()),
                Ok(_) => Err(corrupt("the frame holds less than it says")),
                Err(code) => Err(corrupt(zstd::zstd_safe::get_error_name(code))),
            }
        })?;
        Ok(output)
    }
}

/// Trains a dictionary from a sample (zstd's COVER training): `DICTIONARY_BYTES`, or a
/// thirty-second of a smaller sample.
pub(crate) fn train(sample: &Sample) -> Result<Vec<u8>, CodecError> {
    let size = (sample.bytes.len() / 32).clamp(4 * 1024, DICTIONARY_BYTES);
    zstd::dict::from_continuous(&sample.bytes, &sample.sizes, size)
        .map_err(|error| CodecError::Training(error.to_string()))
}

fn compress(encoder: Option<&Encoder>, input: &[u8]) -> Vec<u8> {
    COMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let (context, scratch) = cell.get_or_insert_with(|| (CCtx::create(), Vec::new()));
        // Compressed into a scratch buffer with room for zstd's bound, then copied out at its
        // size: a batch holds thousands of frames until it commits, and each at the bound's
        // capacity would hold ten times the memory it uses.
        scratch.clear();
        scratch.reserve(zstd::zstd_safe::compress_bound(input.len()));
        let written = match encoder {
            Some(encoder) => context.compress_using_cdict(scratch, input, encoder.dictionary.as_cdict()),
            None => context.compress(scratch, input, LEVEL),
        };
        // The buffer has room for zstd's bound, so compression cannot fail for want of space.
        written.expect("zstd compresses into a buffer of its bound");
        scratch.to_vec()
    })
}

/// A part's items as one text to compress: for each, its id's length and id, then its
/// document's length and document (lengths as 4 bytes, little-endian).
fn frame_part(items: &[(String, String)]) -> Vec<u8> {
    let size = items.iter().map(|(id, document)| 8 + id.len() + document.len()).sum();
    let mut framed = Vec::with_capacity(size);
    for (id, document) in items {
        for text in [id, document] {
            framed.extend_from_slice(&(text.len() as u32).to_le_bytes());
            framed.extend_from_slice(text.as_bytes());
        }
    }
    framed
}

fn unframe_part(mut framed: &[u8]) -> Result<Vec<(String, String)>, CodecError> {
    let corrupt = || CodecError::CorruptDocument("a part's framing is cut short".into());
    let next_text = |framed: &mut &[u8]| -> Result<String, CodecError> {
        let (length, rest) = framed.split_first_chunk::<4>().ok_or_else(corrupt)?;
        let length = u32::from_le_bytes(*length) as usize;
        if rest.len() < length {
            return Err(corrupt());
        }
        let (text, rest) = rest.split_at(length);
        *framed = rest;
        String::from_utf8(text.to_vec()).map_err(|error| CodecError::CorruptDocument(error.to_string()))
    };
    let mut items = Vec::new();
    while !framed.is_empty() {
        let id = next_text(&mut framed)?;
        let document = next_text(&mut framed)?;
        items.push((id, document));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documents(seed: u64, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                format!(
                    r#"{{"id":"{:08x}-0000-4000-8000-{:012x}","caller":{{"userAgent":{{"headerValue":"RTCC/7.0.0.0 Teams/1.0","platform":"windows"}}}},"media":[{{"label":"main-audio","streams":[{{"averageJitter":"PT0.{:03}S","packetUtilization":{},"averageRoundTripTime":null}}]}}],"failureInfo":null,"seed":{seed}}}"#,
                    i * 7919,
                    i as u64 * seed,
                    i % 1000,
                    i * 31
                )
            })
            .collect()
    }

    fn trained(id: u32, kind: DocumentKind, seed: u64) -> StoredDictionary {
        let sample: Sample = documents(seed, 2000).into_iter().collect();
        StoredDictionary::new(id, kind, train(&sample).unwrap(), Timestamp::from_ticks(0))
    }

    fn record(documents: &[String]) -> PreparedRecord {
        PreparedRecord {
            id: "r".into(),
            version: 1,
            start: Timestamp::from_ticks(0),
            end: Timestamp::from_ticks(0),
            document: documents[0].clone(),
            organizer_at: 0,
            sessions: documents.iter().map(|d| (d[7..43].to_owned(), d.clone())).collect(),
            participants: documents.iter().take(3).map(|d| ("p".to_owned(), d.clone())).collect(),
            streams: Default::default(),
            quality: Default::default(),
            rewrite: false,
        }
    }

    fn round_trip(codec: &Codec, documents: &[String]) -> usize {
        let batch = [record(documents)];
        let compressed = codec.compress_batch(&batch);
        assert_eq!(codec.decode(&compressed[0].document).unwrap(), batch[0].document);
        let mut sessions = Vec::new();
        let mut participants = Vec::new();
        for part in &compressed[0].parts {
            let items = codec.decode_part(&part.body).unwrap();
            let expected_start = match part.kind {
                PartKind::Sessions => sessions.len(),
                PartKind::Participants => participants.len(),
            };
            assert_eq!(part.first_ordinal, expected_start as i64);
            match part.kind {
                PartKind::Sessions => sessions.extend(items),
                PartKind::Participants => participants.extend(items),
            }
        }
        assert_eq!(sessions, batch[0].sessions);
        assert_eq!(participants, batch[0].participants);
        compressed[0].document.len()
    }

    #[test]
    fn documents_round_trip_through_every_dictionary_version() {
        let sample = documents(3, 150);
        // Without a dictionary, then through each of three versions of each kind: every frame
        // written at any point still decodes once newer dictionaries are installed.
        let codec = Codec::with_dictionaries(&[]);
        let mut frames = vec![codec.compress_batch(&[record(&sample)])];
        let plain_size = round_trip(&codec, &sample);
        let mut id = 0;
        let mut dictionaries = Vec::new();
        for version in 0..3 {
            for kind in DocumentKind::ALL {
                id += 1;
                let dictionary = trained(id, kind, 3 + version);
                codec.install(&dictionary);
                dictionaries.push(dictionary);
                assert_eq!(codec.current_dictionary(kind), Some(id));
            }
            frames.push(codec.compress_batch(&[record(&sample)]));
            let size = round_trip(&codec, &sample);
            assert!(
                size * 2 < plain_size,
                "a dictionary compresses a document better: {size} vs {plain_size}"
            );
        }
        // A codec opened afresh on the same dictionaries reads every frame ever written.
        Codec::check(&dictionaries, 9).unwrap();
        let reopened = Codec::with_dictionaries(&dictionaries);
        for batch in &frames {
            assert_eq!(reopened.decode(&batch[0].document).unwrap(), sample[0]);
            for part in &batch[0].parts {
                reopened.decode_part(&part.body).unwrap();
            }
        }
        // The frame names its dictionary: the last batch's record frame used the newest one.
        let last = &frames.last().unwrap()[0].document;
        assert_eq!(
            zstd::zstd_safe::get_dict_id_from_frame(last).map(|id| id.get()),
            Some(7)
        );
    }

    #[test]
    fn a_frame_without_its_dictionary_is_an_error_never_text() {
        let sample = documents(5, 10);
        let codec = Codec::default();
        codec.install(&trained(1, DocumentKind::Record, 5));
        let frame = codec.compress_batch(&[record(&sample)]).remove(0).document;
        let stranger = Codec::default();
        assert!(matches!(stranger.decode(&frame), Err(CodecError::UnknownDictionary(1))));
        assert!(matches!(
            codec.decode(&frame[..frame.len() - 3]),
            Err(CodecError::CorruptDocument(_))
        ));
        assert!(matches!(
            codec.decode(b"{\"id\":1}"),
            Err(CodecError::CorruptDocument(_))
        ));
    }

    #[test]
    fn damaged_or_missing_dictionaries_are_refused() {
        let first = trained(1, DocumentKind::Record, 1);
        let second = trained(2, DocumentKind::Session, 2);
        let mut corrupt = second.clone();
        let middle = corrupt.body.len() / 2;
        corrupt.body[middle] ^= 0x55;
        assert!(matches!(
            Codec::check(&[first.clone(), corrupt], 2),
            Err(CodecError::CorruptDictionary(2, _))
        ));
        assert!(matches!(
            Codec::check(std::slice::from_ref(&second), 2),
            Err(CodecError::MissingDictionary(1))
        ));
        // The newest lost leaves no gap; the count of those issued still tells.
        assert!(matches!(
            Codec::check(std::slice::from_ref(&first), 2),
            Err(CodecError::MissingDictionary(2))
        ));
        let renamed = StoredDictionary {
            id: 3,
            ..second.clone()
        };
        assert!(matches!(
            Codec::check(&[first.clone(), second.clone(), renamed], 3),
            Err(CodecError::CorruptDictionary(3, _))
        ));
        Codec::check(&[first, second], 2).unwrap();
    }

    #[test]
    fn training_is_due_once_there_are_enough_samples_and_again_after_drift() {
        let codec = Codec::default();
        let sample = documents(9, 400);
        let mut due = Vec::new();
        for _ in 0..200 {
            due = codec.training_due(&[record(&sample)]);
            if !due.is_empty() {
                break;
            }
        }
        let kinds: Vec<_> = due.iter().map(|(kind, _)| *kind).collect();
        assert!(kinds.contains(&DocumentKind::Session), "sessions come first: {kinds:?}");
        let (_, samples) = due
            .into_iter()
            .find(|(kind, _)| *kind == DocumentKind::Session)
            .unwrap();
        let first = train(&samples).unwrap();
        assert!(
            first.len() < DICTIONARY_BYTES,
            "the first dictionary is small: {}",
            first.len()
        );
        codec.install(&StoredDictionary::new(
            1,
            DocumentKind::Session,
            first,
            Timestamp::from_ticks(0),
        ));
        // Once the sample is full, a full-size dictionary replaces the small one, once.
        let mut batches = 0;
        let samples = loop {
            batches += 1;
            assert!(batches < 200, "a full sample asks for a full-size dictionary");
            let due = codec.training_due(&[record(&sample)]);
            if let Some((_, samples)) = due.into_iter().find(|(kind, _)| *kind == DocumentKind::Session) {
                break samples;
            }
        };
        assert!(samples.bytes.len() >= SAMPLE_BYTES);
        codec.install(&StoredDictionary::new(
            2,
            DocumentKind::Session,
            train(&samples).unwrap(),
            Timestamp::from_ticks(0),
        ));
        // Documents like the samples keep the dictionary, and are not kept as samples;
        // documents unlike them drift.
        for _ in 0..100 {
            codec.compress_batch(&[record(&sample)]);
            let due = codec.training_due(&[record(&sample)]);
            assert!(!due.iter().any(|(kind, _)| *kind == DocumentKind::Session));
        }
        assert_eq!(codec.sampled_bytes(DocumentKind::Session), 0);
        // Pseudo-random hex: nothing like the samples, and only about 2 x compressible.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let other: Vec<String> = (0..400)
            .map(|_| {
                let text: String = (0..8)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1_442_695_040_888_963_407);
                        format!("{:016x}", state >> 1)
                    })
                    .collect();
                format!(r#"{{"unrelated":"{text}"}}"#)
            })
            .collect();
        let mut drifted = false;
        for _ in 0..400 {
            codec.compress_batch(&[record(&other)]);
            if codec
                .training_due(&[record(&other)])
                .iter()
                .any(|(kind, _)| *kind == DocumentKind::Session)
            {
                drifted = true;
                break;
            }
        }
        assert!(drifted, "a drift in the documents asks for a new dictionary");
    }
}
