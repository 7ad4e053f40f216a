//! Which subprotocol a server speaks (RFC 6455 §1.9, §4.2.2): the one policy every face uses.

use crate::handshake::Request;

/// How a server picks the subprotocol from those the client offers.
///
/// Every face asks this type, so a face never decides: the Rust API and the component default
/// to [`None`](SubprotocolPolicy::None) ("none unless configured"), the Node server to
/// [`ClientFirst`](SubprotocolPolicy::ClientFirst) (the `ws` package's default when no
/// `handleProtocols` is set). Whatever is picked must be one of the client's offers; core
/// checks that before answering.
///
/// ```
/// use lowbit_websockets::upgrade::SubprotocolPolicy;
/// let offered = ["v2.chat", "chat"];
/// assert_eq!(SubprotocolPolicy::None.choose(offered), None);
/// assert_eq!(SubprotocolPolicy::ClientFirst.choose(offered).as_deref(), Some("v2.chat"));
/// let ours = SubprotocolPolicy::FirstSupported(vec!["chat".into(), "v2.chat".into()]);
/// assert_eq!(ours.choose(offered).as_deref(), Some("v2.chat"), "in the client's order");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubprotocolPolicy {
    /// Speak no subprotocol, whatever the client offers.
    #[default]
    None,
    /// The client's first offer, whatever it is.
    ClientFirst,
    /// The first of the client's offers, in the client's order of preference, that is in this
    /// list of subprotocols the server speaks. An empty list picks none.
    FirstSupported(Vec<String>),
    /// A choice the application made itself, outside Rust (e.g. `ws`'s `handleProtocols` in
    /// JavaScript): this one, or none. A protocol the client did not offer refuses the request
    /// with 500.
    Chosen(Option<String>),
}

impl SubprotocolPolicy {
    /// The subprotocol to speak, given the client's offers in its order of preference.
    pub fn choose<'a>(&self, offered: impl IntoIterator<Item = &'a str>) -> Option<String> {
        let mut offered = offered.into_iter();
        match self {
            Self::None => None,
            Self::ClientFirst => offered.next().map(str::to_owned),
            Self::FirstSupported(ours) => offered.find(|p| ours.iter().any(|s| s == p)).map(str::to_owned),
            Self::Chosen(chosen) => chosen.clone(),
        }
    }

    /// [`choose`](SubprotocolPolicy::choose) for a checked request.
    pub fn choose_for(&self, req: &Request<'_>) -> Option<String> {
        self.choose(req.protocols())
    }
}
