//! The call-records entity types that `$select` and `$expand` are checked against.
//!
//! Property names are the exact JSON names of the v1.0 CSDL
//! (`src/model/callRecords.csdl.xml`), including the inherited `id`.

/// An entity type of the `microsoft.graph.callRecords` namespace that a query
/// option can address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum EntityKind {
    /// `microsoft.graph.callRecords.callRecord`
    CallRecord,
    /// `microsoft.graph.callRecords.session`
    Session,
    /// `microsoft.graph.callRecords.segment`
    Segment,
    /// `microsoft.graph.callRecords.participant`
    Participant,
    /// `microsoft.graph.callRecords.organizer`
    Organizer,
}

impl EntityKind {
    /// The qualified OData type name, as Graph writes it in error messages.
    pub(crate) const fn type_name(self) -> &'static str {
        match self {
            EntityKind::CallRecord => "microsoft.graph.callRecords.callRecord",
            EntityKind::Session => "microsoft.graph.callRecords.session",
            EntityKind::Segment => "microsoft.graph.callRecords.segment",
            EntityKind::Participant => "microsoft.graph.callRecords.participant",
            EntityKind::Organizer => "microsoft.graph.callRecords.organizer",
        }
    }

    /// Every structural and navigation property of the type, canonically spelled.
    pub(crate) const fn properties(self) -> &'static [&'static str] {
        match self {
            EntityKind::CallRecord => &[
                "id",
                "version",
                "type",
                "modalities",
                "lastModifiedDateTime",
                "startDateTime",
                "endDateTime",
                "joinWebUrl",
                "organizer",
                "participants",
                "organizer_v2",
                "participants_v2",
                "sessions",
            ],
            EntityKind::Session => &[
                "id",
                "caller",
                "callee",
                "failureInfo",
                "isTest",
                "modalities",
                "startDateTime",
                "endDateTime",
                "segments",
            ],
            EntityKind::Segment => &[
                "id",
                "caller",
                "callee",
                "failureInfo",
                "media",
                "startDateTime",
                "endDateTime",
            ],
            EntityKind::Participant | EntityKind::Organizer => &["id", "identity", "administrativeUnitInfos"],
        }
    }

    /// The navigation properties that `$expand` accepts on this type, with the
    /// type each one leads to. Nothing else may be expanded.
    pub(crate) const fn navigation_properties(self) -> &'static [(&'static str, EntityKind)] {
        match self {
            EntityKind::CallRecord => &[
                ("sessions", EntityKind::Session),
                ("participants_v2", EntityKind::Participant),
                ("organizer_v2", EntityKind::Organizer),
            ],
            EntityKind::Session => &[("segments", EntityKind::Segment)],
            EntityKind::Segment | EntityKind::Participant | EntityKind::Organizer => &[],
        }
    }

    /// Looks a property up case-insensitively and returns its canonical spelling.
    pub(crate) fn property(self, name: &str) -> Option<&'static str> {
        self.properties()
            .iter()
            .copied()
            .find(|candidate| candidate.eq_ignore_ascii_case(name))
    }

    /// Looks an expandable navigation property up case-insensitively.
    pub(crate) fn navigation_property(self, name: &str) -> Option<(&'static str, EntityKind)> {
        self.navigation_properties()
            .iter()
            .copied()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
    }
}
