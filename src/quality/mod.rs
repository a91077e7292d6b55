//! Call quality as Microsoft's Call Quality Dashboard (CQD) measures it: every stream of every
//! media of every segment, classified by CQD's published rules. Pure code over a `CallRecord`.

pub(crate) mod buildings;
mod classify;
mod rows;

pub(crate) use classify::{classify, Classification, Condition, MediaType};
pub(crate) use rows::{is_conference, CallFacts, LegRow, StreamRow, POOR_RATING_AT_MOST};
pub use rows::{EndpointFacts, QualityRows};

/// Streams counted by media type and classification, and poor ones by condition: what ingest
/// adds to `/metrics` for the records it stores.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamTally {
    by_class: [[u64; 3]; 3],
    poor_due_to: [[u64; 8]; 3],
}

const MEDIA_TYPES: [MediaType; 3] = [MediaType::Audio, MediaType::Video, MediaType::Vbss];
const CLASSIFICATIONS: [Classification; 3] = [Classification::Good, Classification::Poor, Classification::Unclassified];
const CONDITIONS: [Condition; 8] = [
    Condition::Jitter,
    Condition::PacketLoss,
    Condition::Degradation,
    Condition::RoundTrip,
    Condition::ConcealedRatio,
    Condition::FrameLoss,
    Condition::FrameRate,
    Condition::PostFecPacketLoss,
];

impl StreamTally {
    pub(crate) fn of(rows: &QualityRows) -> Self {
        let mut tally = Self::default();
        for stream in &rows.streams {
            let media = stream.media_type as usize;
            tally.by_class[media][stream.classification as usize] += 1;
            for condition in &stream.poor_due_to {
                tally.poor_due_to[media][*condition as usize] += 1;
            }
        }
        tally
    }

    pub(crate) fn add(&mut self, other: &Self) {
        for media in 0..MEDIA_TYPES.len() {
            for class in 0..CLASSIFICATIONS.len() {
                self.by_class[media][class] += other.by_class[media][class];
            }
            for condition in 0..CONDITIONS.len() {
                self.poor_due_to[media][condition] += other.poor_due_to[media][condition];
            }
        }
    }

    /// The non-zero counts by media type and classification.
    pub(crate) fn by_class(&self) -> impl Iterator<Item = (MediaType, Classification, u64)> + '_ {
        MEDIA_TYPES.iter().flat_map(move |&media| {
            CLASSIFICATIONS
                .iter()
                .map(move |&class| (media, class, self.by_class[media as usize][class as usize]))
                .filter(|(_, _, count)| *count > 0)
        })
    }

    /// The non-zero counts of poor streams by media type and condition.
    pub(crate) fn poor_due_to(&self) -> impl Iterator<Item = (MediaType, Condition, u64)> + '_ {
        MEDIA_TYPES.iter().flat_map(move |&media| {
            CONDITIONS
                .iter()
                .map(move |&condition| (media, condition, self.poor_due_to[media as usize][condition as usize]))
                .filter(|(_, _, count)| *count > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_classified_stream_of_every_segment_is_judged() {
        let segment = |id: &str, jitter: &str| {
            json!({
                "id": id, "startDateTime": "2024-03-01T10:00:00Z", "endDateTime": "2024-03-01T10:05:00Z",
                "media": [
                    { "label": "main-audio", "streams": [
                        { "streamDirection": "callerToCallee", "averageJitter": jitter },
                        { "streamDirection": "calleeToCaller" }
                    ]},
                    { "label": "data", "streams": [ { "streamDirection": "callerToCallee" } ] },
                    { "label": "applicationsharing-video", "streams": [
                        { "streamDirection": "callerToCallee", "averageVideoFrameRate": 1.5 }
                    ]}
                ]
            })
        };
        let record = json!({
            "id": "r1", "version": 1, "type": "groupCall", "modalities": ["audio"],
            "startDateTime": "2024-03-01T10:00:00Z", "endDateTime": "2024-03-01T10:05:00Z",
            "sessions": [{ "id": "s1", "modalities": ["audio"], "startDateTime": "2024-03-01T10:00:00Z",
                "endDateTime": "2024-03-01T10:05:00Z", "segments": [segment("g1", "PT0.05S"), segment("g2", "PT0.01S")] }]
        });
        let record = crate::model::parse_call_record(record.to_string().as_bytes()).expect("a record");
        let rows = QualityRows::of(&record);
        let verdicts: Vec<(MediaType, Classification)> = rows
            .streams
            .iter()
            .map(|stream| (stream.media_type, stream.classification))
            .collect();
        use Classification::*;
        let tally = StreamTally::of(&rows);
        assert_eq!(
            tally.by_class().collect::<Vec<_>>(),
            [
                (MediaType::Audio, Good, 1),
                (MediaType::Audio, Poor, 1),
                (MediaType::Audio, Unclassified, 2),
                (MediaType::Vbss, Poor, 2)
            ]
        );
        assert_eq!(
            tally.poor_due_to().collect::<Vec<_>>(),
            [
                (MediaType::Audio, Condition::Jitter, 1),
                (MediaType::Vbss, Condition::FrameRate, 2)
            ]
        );
        let mut twice = tally.clone();
        twice.add(&tally);
        assert_eq!(twice.by_class().map(|(_, _, n)| n).sum::<u64>(), 12);
        assert_eq!(
            verdicts,
            [
                (MediaType::Audio, Poor),
                (MediaType::Audio, Unclassified),
                (MediaType::Vbss, Poor),
                (MediaType::Audio, Good),
                (MediaType::Audio, Unclassified),
                (MediaType::Vbss, Poor),
            ]
        );
    }
}
