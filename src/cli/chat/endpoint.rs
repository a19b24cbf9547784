//! Where the chat sends its calls: the Messages API's host (`--host`) and the line that names
//! the endpoint actually used.

use verbatim_model::Api;
use verbatim_transport::{HttpConfig, MessagesHost};

/// What the chat says it talks to: the endpoint actually used (an endpoint variable may point
/// elsewhere than Amazon Bedrock), its region, and the Messages API's host.
pub(super) fn talking_to(config: &HttpConfig, api: Api) -> String {
    let mantle = api == Api::Messages && config.messages_host == MessagesHost::Mantle;
    let endpoint = if mantle { &config.mantle_endpoint_url } else { &config.endpoint_url };
    let surface = match (api, mantle) {
        (Api::Messages, true) => " (the Messages API on bedrock-mantle)",
        (Api::Messages, false) => " (the Messages API on bedrock-runtime)",
        _ => "",
    };
    match endpoint {
        Some(url) => format!("Talking to {url}, region {}{surface}.", config.region),
        None => format!("Talking to Amazon Bedrock in {}{surface}.", config.region),
    }
}

/// The host of the Messages API.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum HostArg {
    /// bedrock-runtime, signed as `bedrock`.
    Runtime,
    /// bedrock-mantle, signed as `bedrock-mantle`.
    Mantle,
}

impl HostArg {
    fn host(self) -> MessagesHost {
        match self {
            HostArg::Runtime => MessagesHost::Runtime,
            HostArg::Mantle => MessagesHost::Mantle,
        }
    }
}

/// `config` sending Messages API calls to the host asked for; an emulator serves both hosts
/// at its one address.
pub(super) fn with_host(config: HttpConfig, host: HostArg, emulator: Option<&str>) -> HttpConfig {
    let config = config.with_messages_host(host.host());
    match emulator {
        Some(url) => config.with_mantle_endpoint_url(url),
        None => config,
    }
}
