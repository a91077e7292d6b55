//! CQD's stream classification, exactly as Microsoft publishes it for the Call Quality Dashboard:
//! a stream is Poor, Good or Unclassified, and a Poor stream is poor due to one or more
//! conditions. Pure code over one `mediaStream`.
//!
//! Audio is Poor when any of five averages passes its threshold, and Good when none does and at
//! least one was reported. Video and video-based screen sharing are decided by the first of three
//! metrics that was reported, in CQD's order. A value Graph sends as `"NaN"`, `"INF"` or
//! `"-INF"` was not reported.
//!
//! Thresholds are compared in the precision Graph sends the values in (`Edm.Single`, so `f32`;
//! durations in 100 ns ticks): a packet loss rate of exactly `0.1` is not above `0.1`.

use crate::model::{Duration, MediaStream, Single};

/// What a stream carries, as CQD tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum MediaType {
    Audio = 0,
    Video = 1,
    /// Video-based screen sharing.
    Vbss = 2,
}

impl MediaType {
    /// The name metrics and analytics use.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MediaType::Audio => "audio",
            MediaType::Video => "video",
            MediaType::Vbss => "vbss",
        }
    }

    /// The media type of a `media` by its `label`, as Teams labels media at negotiation:
    /// `main-audio`, `main-video` (and `panoramic-video`), `applicationsharing-video` for
    /// video-based screen sharing. Data channels and anything else are not classified.
    pub(crate) fn of_label(label: &str) -> Option<Self> {
        let label = label.to_ascii_lowercase();
        if label.contains("applicationsharing") || label.contains("screensharing") || label.contains("vbss") {
            Some(MediaType::Vbss)
        } else if label.contains("audio") {
            Some(MediaType::Audio)
        } else if label.contains("video") {
            Some(MediaType::Video)
        } else {
            None
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Classification {
    Good = 0,
    Poor = 1,
    Unclassified = 2,
}

impl Classification {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Classification::Good => "good",
            Classification::Poor => "poor",
            Classification::Unclassified => "unclassified",
        }
    }
}

/// A condition a stream can be poor due to; a stream can be poor due to several.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Condition {
    Jitter = 0,
    PacketLoss = 1,
    Degradation = 2,
    RoundTrip = 3,
    ConcealedRatio = 4,
    FrameLoss = 5,
    FrameRate = 6,
    PostFecPacketLoss = 7,
}

impl Condition {
    /// The name metrics and analytics report it under.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Condition::Jitter => "jitter",
            Condition::PacketLoss => "packetLoss",
            Condition::Degradation => "degradation",
            Condition::RoundTrip => "roundTrip",
            Condition::ConcealedRatio => "concealedRatio",
            Condition::FrameLoss => "frameLoss",
            Condition::FrameRate => "frameRate",
            Condition::PostFecPacketLoss => "postFecPacketLoss",
        }
    }
}

/// A stream's verdict: its classification and, when Poor, what it is poor due to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) classification: Classification,
    pub(crate) poor_due_to: Vec<Condition>,
}

impl Verdict {
    fn unclassified() -> Self {
        Self {
            classification: Classification::Unclassified,
            poor_due_to: Vec::new(),
        }
    }
}

/// 100 ns ticks in a millisecond.
const TICKS_PER_MS: i64 = 10_000;

/// CQD's audio thresholds: Poor when a reported average is above its limit.
const AUDIO_DEGRADATION_ABOVE: f32 = 1.0;
const AUDIO_ROUND_TRIP_ABOVE_MS: i64 = 500;
const AUDIO_PACKET_LOSS_ABOVE: f32 = 0.1;
const AUDIO_JITTER_ABOVE_MS: i64 = 30;
const AUDIO_CONCEALED_RATIO_ABOVE: f32 = 0.07;

/// CQD's video and VBSS steps.
const VIDEO_FRAME_LOSS_PERCENT_ABOVE: f32 = 50.0;
const VIDEO_FRAME_RATE_BELOW: f32 = 7.0;
const VBSS_FRAME_RATE_BELOW: f32 = 2.0;
const VIDEO_POST_FEC_LOSS_ABOVE: f32 = 0.15;

/// A reported value: present and finite.
pub(crate) fn reported(value: Option<Single>) -> Option<f32> {
    value.map(|value| value.0).filter(|value| value.is_finite())
}

fn above_ms(value: Option<Duration>, limit_ms: i64) -> Option<bool> {
    value.map(|duration| duration.ticks() > limit_ms * TICKS_PER_MS)
}

/// The verdict on one stream of `media`.
pub(crate) fn classify(media: MediaType, stream: &MediaStream) -> Verdict {
    match media {
        MediaType::Audio => classify_audio(stream),
        MediaType::Video => classify_video(stream, VIDEO_FRAME_RATE_BELOW),
        MediaType::Vbss => classify_video(stream, VBSS_FRAME_RATE_BELOW),
    }
}

fn classify_audio(stream: &MediaStream) -> Verdict {
    let checks: [(Condition, Option<bool>); 5] = [
        (
            Condition::Degradation,
            reported(stream.average_audio_degradation).map(|v| v > AUDIO_DEGRADATION_ABOVE),
        ),
        (
            Condition::RoundTrip,
            above_ms(stream.average_round_trip_time, AUDIO_ROUND_TRIP_ABOVE_MS),
        ),
        (
            Condition::PacketLoss,
            reported(stream.average_packet_loss_rate).map(|v| v > AUDIO_PACKET_LOSS_ABOVE),
        ),
        (
            Condition::Jitter,
            above_ms(stream.average_jitter, AUDIO_JITTER_ABOVE_MS),
        ),
        (
            Condition::ConcealedRatio,
            reported(stream.average_ratio_of_concealed_samples).map(|v| v > AUDIO_CONCEALED_RATIO_ABOVE),
        ),
    ];
    if checks.iter().all(|(_, poor)| poor.is_none()) {
        return Verdict::unclassified();
    }
    let mut poor_due_to: Vec<Condition> = checks
        .iter()
        .filter(|(_, poor)| *poor == Some(true))
        .map(|(condition, _)| *condition)
        .collect();
    poor_due_to.sort();
    Verdict {
        classification: if poor_due_to.is_empty() {
            Classification::Good
        } else {
            Classification::Poor
        },
        poor_due_to,
    }
}

fn classify_video(stream: &MediaStream, frame_rate_below: f32) -> Verdict {
    let steps: [(Condition, Option<bool>); 3] = [
        (
            Condition::FrameLoss,
            reported(stream.average_video_frame_loss_percentage).map(|v| v > VIDEO_FRAME_LOSS_PERCENT_ABOVE),
        ),
        (
            Condition::FrameRate,
            reported(stream.average_video_frame_rate).map(|v| v < frame_rate_below),
        ),
        (
            Condition::PostFecPacketLoss,
            reported(stream.post_forward_error_correction_packet_loss_rate).map(|v| v > VIDEO_POST_FEC_LOSS_ABOVE),
        ),
    ];
    match steps
        .iter()
        .find_map(|(condition, poor)| poor.map(|poor| (*condition, poor)))
    {
        None => Verdict::unclassified(),
        Some((condition, true)) => Verdict {
            classification: Classification::Poor,
            poor_due_to: vec![condition],
        },
        Some((_, false)) => Verdict {
            classification: Classification::Good,
            poor_due_to: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stream(metrics: serde_json::Value) -> MediaStream {
        let mut value = json!({ "streamDirection": "callerToCallee" });
        value
            .as_object_mut()
            .unwrap()
            .extend(metrics.as_object().unwrap().clone());
        serde_json::from_value(value).expect("a mediaStream")
    }

    fn verdict(media: MediaType, metrics: serde_json::Value) -> (Classification, Vec<Condition>) {
        let verdict = classify(media, &stream(metrics));
        (verdict.classification, verdict.poor_due_to)
    }

    use Classification::{Good, Poor, Unclassified};
    use Condition::*;

    #[test]
    fn each_audio_threshold_is_poor_only_above_it() {
        let cases = [
            (
                "averageAudioDegradation",
                json!(1.0),
                json!(1.01),
                json!(0.99),
                Degradation,
            ),
            (
                "averageRoundTripTime",
                json!("PT0.5S"),
                json!("PT0.5000001S"),
                json!("PT0.499S"),
                RoundTrip,
            ),
            (
                "averagePacketLossRate",
                json!(0.1),
                json!(0.1001),
                json!(0.0999),
                PacketLoss,
            ),
            (
                "averageJitter",
                json!("PT0.03S"),
                json!("PT0.0300001S"),
                json!("PT0.029S"),
                Jitter,
            ),
            (
                "averageRatioOfConcealedSamples",
                json!(0.07),
                json!(0.0701),
                json!(0.0699),
                ConcealedRatio,
            ),
        ];
        for (property, at, above, below, condition) in cases {
            assert_eq!(
                verdict(MediaType::Audio, json!({ property: at })),
                (Good, vec![]),
                "{property} at"
            );
            assert_eq!(
                verdict(MediaType::Audio, json!({ property: above })),
                (Poor, vec![condition]),
                "{property} above"
            );
            assert_eq!(
                verdict(MediaType::Audio, json!({ property: below })),
                (Good, vec![]),
                "{property} below"
            );
        }
    }

    #[test]
    fn audio_is_poor_due_to_every_condition_it_passes() {
        let all = json!({
            "averageAudioDegradation": 2.5, "averageRoundTripTime": "PT1S", "averagePacketLossRate": 0.3,
            "averageJitter": "PT0.1S", "averageRatioOfConcealedSamples": 0.2,
        });
        assert_eq!(
            verdict(MediaType::Audio, all),
            (Poor, vec![Jitter, PacketLoss, Degradation, RoundTrip, ConcealedRatio])
        );
        let some =
            json!({ "averageJitter": "PT0.05S", "averagePacketLossRate": 0.01, "averageRoundTripTime": "PT0.6S" });
        assert_eq!(verdict(MediaType::Audio, some), (Poor, vec![Jitter, RoundTrip]));
    }

    #[test]
    fn audio_without_reported_metrics_is_unclassified() {
        assert_eq!(verdict(MediaType::Audio, json!({})), (Unclassified, vec![]));
        let not_reported = json!({
            "averageAudioDegradation": "NaN", "averagePacketLossRate": "INF",
            "averageRatioOfConcealedSamples": "-INF", "averageBandwidthEstimate": 100000,
        });
        assert_eq!(verdict(MediaType::Audio, not_reported), (Unclassified, vec![]));
        // One reported metric is enough to judge by; NaN beside it counts for nothing.
        let one = json!({ "averageAudioDegradation": "NaN", "averageJitter": "PT0.01S" });
        assert_eq!(verdict(MediaType::Audio, one), (Good, vec![]));
        let poor = json!({ "averagePacketLossRate": "NaN", "averageJitter": "PT0.04S" });
        assert_eq!(verdict(MediaType::Audio, poor), (Poor, vec![Jitter]));
    }

    #[test]
    fn video_is_decided_by_the_first_reported_step() {
        let v = MediaType::Video;
        assert_eq!(
            verdict(v, json!({ "averageVideoFrameLossPercentage": 50 })),
            (Good, vec![])
        );
        assert_eq!(
            verdict(v, json!({ "averageVideoFrameLossPercentage": 50.5 })),
            (Poor, vec![FrameLoss])
        );
        // Step 1 reported and good: a poor frame rate behind it does not count.
        let good_first = json!({ "averageVideoFrameLossPercentage": 10, "averageVideoFrameRate": 1 });
        assert_eq!(verdict(v, good_first), (Good, vec![]));
        assert_eq!(verdict(v, json!({ "averageVideoFrameRate": 7 })), (Good, vec![]));
        assert_eq!(
            verdict(v, json!({ "averageVideoFrameRate": 6.9 })),
            (Poor, vec![FrameRate])
        );
        let nan_first = json!({ "averageVideoFrameLossPercentage": "NaN", "averageVideoFrameRate": 6.5 });
        assert_eq!(verdict(v, nan_first), (Poor, vec![FrameRate]));
        assert_eq!(
            verdict(v, json!({ "postForwardErrorCorrectionPacketLossRate": 0.15 })),
            (Good, vec![])
        );
        assert_eq!(
            verdict(v, json!({ "postForwardErrorCorrectionPacketLossRate": 0.16 })),
            (Poor, vec![PostFecPacketLoss])
        );
        assert_eq!(verdict(v, json!({ "averageJitter": "PT1S" })), (Unclassified, vec![]));
    }

    #[test]
    fn screen_sharing_takes_its_own_frame_rate() {
        let s = MediaType::Vbss;
        assert_eq!(verdict(s, json!({ "averageVideoFrameRate": 2 })), (Good, vec![]));
        assert_eq!(
            verdict(s, json!({ "averageVideoFrameRate": 1.9 })),
            (Poor, vec![FrameRate])
        );
        assert_eq!(verdict(s, json!({ "averageVideoFrameRate": 5 })), (Good, vec![]));
        assert_eq!(
            verdict(s, json!({ "averageVideoFrameLossPercentage": 51 })),
            (Poor, vec![FrameLoss])
        );
        assert_eq!(verdict(s, json!({})), (Unclassified, vec![]));
    }

    #[test]
    fn media_types_come_from_the_labels() {
        assert_eq!(MediaType::of_label("main-audio"), Some(MediaType::Audio));
        assert_eq!(MediaType::of_label("main-video"), Some(MediaType::Video));
        assert_eq!(MediaType::of_label("panoramic-video"), Some(MediaType::Video));
        assert_eq!(MediaType::of_label("applicationsharing-video"), Some(MediaType::Vbss));
        assert_eq!(MediaType::of_label("data"), None);
    }
}
