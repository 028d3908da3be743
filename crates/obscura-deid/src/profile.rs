//! The confidentiality profile applied, as written into the output's
//! de-identification markers and the run report.

/// A CID 7050 code of a de-identification method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodCode {
    /// Code Value, for example `113100`.
    pub value: &'static str,
    /// Code Meaning.
    pub meaning: &'static str,
}

/// The Basic Application Level Confidentiality Profile (CID 7050, 113100).
pub const BASIC_PROFILE: MethodCode = MethodCode {
    value: "113100",
    meaning: "Basic Application Confidentiality Profile",
};

/// A description of the profile an engine applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The codes written into DeidentificationMethodCodeSequence.
    pub codes: Vec<MethodCode>,
}

impl Profile {
    /// The basic profile with no options.
    pub fn basic() -> Self {
        Profile {
            codes: vec![BASIC_PROFILE],
        }
    }

    /// A one-line name for reports and DeidentificationMethod (at most 64 characters).
    pub fn method_description(&self) -> String {
        let codes: Vec<&str> = self.codes.iter().map(|c| c.value).collect();
        format!(
            "OBSCURA {} PS3.15 E.1-1 {}",
            env!("CARGO_PKG_VERSION"),
            codes.join(" ")
        )
    }
}
