//! Intel AMT operations behind MPS's `/api/v1/amt/*` routes, sans-IO: each [`Request`] becomes
//! an [`Operation`], a short sequence of WS-MAN exchanges (Get, Enumerate + Pull until
//! `EndOfSequence`, Put, method invocations) whose answers are parsed into the JSON that MPS
//! serves for that route.
//!
//! The caller drives it: [`Operation::next_request`] gives the SOAP envelope of the next exchange,
//! the caller sends it as a [`crate::Call`] (digest, retry on 401) over an APF channel to port
//! 16992, and hands the HTTP status and de-chunked body to [`Operation::on_response`]; when
//! `next_request` returns `None`, [`Operation::finish`] gives the answer.
//!
//! Sources for the message shapes: DMTF DSP0226 (WS-Management 1.0), the AMT SDK class
//! reference, and what Open AMT's `wsman-messages` and MPS (`src/amt/DeviceAction.ts`,
//! `src/routes/amt/*.ts`) send and return; the code here is our own.
//!
//! What it deliberately does not do: open sockets, read the clock, retry, or map arbitrary XML:
//! each route reads the properties it reports (`props`) and nothing else. The device's XML is
//! parsed as hostile (`xml`): no DTD, no entity expansion, bounded depth, size and count.

mod envelope;
mod props;
mod records;
mod xml;

use std::collections::{BTreeMap, VecDeque};
use std::str::FromStr;

use serde_json::{Map, Value, json};

use envelope::{Class, Schema};
use xml::Element;

/// Most exchanges one operation may make (a hostile device could otherwise page forever).
pub const MAX_EXCHANGES: u32 = 64;

/// Most `GetRecords` pages read from the event log (390 records each).
pub const MAX_EVENT_PAGES: u32 = 8;

/// Longest fault code or reason kept from a device.
const MAX_FAULT_TEXT: usize = 256;

/// DMTF power states accepted by `power/action` (CIM_PowerManagementService
/// `RequestPowerStateChange`, DSP1027): on, sleep light/deep, cycle soft, off hard, hibernate,
/// off soft, master bus reset, NMI, graceful off/reset/cycle variants.
pub const DMTF_POWER_STATES: [u16; 15] = [2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17];

/// MPS's extended actions: boot to BIOS (100, 101), secure erase (104), OCR HTTPS/PBA/WinRE
/// (105, 106), IDE-R floppy/CD (200-203), diagnostics (300, 301), PXE (400, 401), and OS power
/// saving to full power (500) or to saving (501).
pub const EXTENDED_POWER_STATES: [u16; 15] = [
    100, 101, 104, 105, 106, 200, 201, 202, 203, 300, 301, 400, 401, 500, 501,
];

/// The actions `power/bootOptions` carries out here: the extended actions without the OCR ones
/// (105, 106 need `bootDetails`, not supported) and without 500/501 (`power/action`'s).
pub const BOOT_ACTIONS: [u16; 11] = [100, 101, 104, 200, 201, 202, 203, 300, 301, 400, 401];

/// `IPS_OptInService.OptInRequired` for each user-consent setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserConsent {
    /// No consent needed (0).
    None,
    /// Consent for KVM only (1).
    Kvm,
    /// Consent for every redirection (0xFFFFFFFF).
    All,
}

impl UserConsent {
    /// The `OptInRequired` value.
    pub fn opt_in_required(self) -> u32 {
        match self {
            Self::None => 0,
            Self::Kvm => 1,
            Self::All => u32::MAX,
        }
    }

    /// MPS's name (`none`, `kvm`, `all`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Kvm => "kvm",
            Self::All => "all",
        }
    }

    fn from_opt_in(v: u64) -> Option<Self> {
        match v {
            0 => Some(Self::None),
            1 => Some(Self::Kvm),
            0xFFFF_FFFF => Some(Self::All),
            _ => None,
        }
    }
}

impl FromStr for UserConsent {
    type Err = AmtError;

    /// `kvm`, `all` or `none`, in any case (MPS lower-cases it).
    fn from_str(s: &str) -> Result<Self, AmtError> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "kvm" => Ok(Self::Kvm),
            "all" => Ok(Self::All),
            _ => Err(AmtError::InvalidArgument(
                "userConsent must be kvm, all or none",
            )),
        }
    }
}

/// One MPS AMT route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `GET amt/version`.
    Version,
    /// `GET amt/generalSettings`.
    GeneralSettings,
    /// `GET amt/hardwareInfo`.
    HardwareInfo,
    /// `GET amt/power/state`.
    PowerState,
    /// `GET amt/power/capabilities`.
    PowerCapabilities,
    /// `POST amt/power/action` `{action}`.
    PowerAction {
        /// A [`DMTF_POWER_STATES`] or [`EXTENDED_POWER_STATES`] value.
        action: u16,
    },
    /// `POST amt/power/bootOptions` `{action, useSOL}`.
    BootOptions {
        /// A [`BOOT_ACTIONS`] value.
        action: u16,
        /// Serial-over-LAN during the boot.
        use_sol: bool,
    },
    /// `GET amt/features`.
    FeaturesGet,
    /// `POST amt/features`.
    FeaturesSet {
        /// Who must consent to redirection.
        user_consent: UserConsent,
        /// Serial-over-LAN.
        enable_sol: bool,
        /// IDE redirection.
        enable_ider: bool,
        /// KVM.
        enable_kvm: bool,
        /// One-click recovery (CIM_BootService state), if to be changed.
        ocr: Option<bool>,
    },
    /// `GET amt/log/audit?startIndex=`.
    AuditLog {
        /// First record (1-based; 0 means 1, as MPS treats `<= 0`).
        start_index: u32,
    },
    /// `GET amt/log/event`.
    EventLog,
}

impl Request {
    /// Checks the arguments by MPS's validators (`powerActionValidator`,
    /// `bootOptionsValidator`, `amtFeatureValidator`).
    pub fn validate(&self) -> Result<(), AmtError> {
        match *self {
            Self::PowerAction { action }
                if !DMTF_POWER_STATES.contains(&action)
                    && !EXTENDED_POWER_STATES.contains(&action) =>
            {
                Err(AmtError::InvalidArgument(
                    "action is not a supported power action",
                ))
            }
            Self::BootOptions { action, .. } if !BOOT_ACTIONS.contains(&action) => Err(
                AmtError::InvalidArgument("action is not a supported boot action"),
            ),
            _ => Ok(()),
        }
    }
}

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmtError {
    /// The request's arguments are refused (MPS answers 400).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The device answered with a SOAP fault. `code` is the subcode's local name (e.g.
    /// `DestinationUnreachable`, `InvalidSelectors`), `reason` its text; both from the device,
    /// cut to 256 characters and stripped of control characters.
    #[error("device fault {code}: {reason}")]
    Fault {
        /// Fault subcode (or code), without its namespace prefix.
        code: String,
        /// The fault's reason text.
        reason: String,
    },
    /// The answer is not what the exchange calls for.
    #[error("bad answer from the device: {0}")]
    BadResponse(&'static str),
    /// A non-200 HTTP status without a SOAP fault.
    #[error("device answered HTTP {0}")]
    Http(u16),
    /// A method whose result the operation depends on returned non-zero.
    #[error("{method} returned {value}")]
    ReturnValue {
        /// The method.
        method: &'static str,
        /// Its `ReturnValue`.
        value: u32,
    },
    /// The device lacks a feature the request needs (e.g. KVM on a non-vPro SKU).
    #[error("not supported by the device: {0}")]
    NotSupported(&'static str),
    /// More than [`MAX_EXCHANGES`] exchanges.
    #[error("too many exchanges with the device")]
    TooManyExchanges,
    /// The operation was driven out of order (a response without a request, finishing early,
    /// or going on after a failure).
    #[error("operation misuse: {0}")]
    Sequence(&'static str),
}

/// AMT status names for `ReturnValue` (AMT SDK `PT_STATUS`), as MPS reports `ReturnValueStr`.
pub fn status_name(code: u32) -> &'static str {
    const NAMES: &[(u32, &str)] = &[
        (0x00, "SUCCESS"),
        (0x01, "INTERNAL_ERROR"),
        (0x02, "NOT_READY"),
        (0x03, "INVALID_PT_MODE"),
        (0x04, "INVALID_MESSAGE_LENGTH"),
        (0x05, "TABLE_FINGERPRINT_NOT_AVAILABLE"),
        (0x06, "INTEGRITY_CHECK_FAILED"),
        (0x07, "UNSUPPORTED_ISVS_VERSION"),
        (0x08, "APPLICATION_NOT_REGISTERED"),
        (0x09, "INVALID_REGISTRATION_DATA"),
        (0x0a, "APPLICATION_DOES_NOT_EXIST"),
        (0x0b, "NOT_ENOUGH_STORAGE"),
        (0x0c, "INVALID_NAME"),
        (0x0d, "BLOCK_DOES_NOT_EXIST"),
        (0x0e, "INVALID_BYTE_OFFSET"),
        (0x0f, "INVALID_BYTE_COUNT"),
        (0x10, "NOT_PERMITTED"),
        (0x11, "NOT_OWNER"),
        (0x12, "BLOCK_LOCKED_BY_OTHER"),
        (0x13, "BLOCK_NOT_LOCKED"),
        (0x14, "INVALID_GROUP_PERMISSIONS"),
        (0x15, "GROUP_DOES_NOT_EXIST"),
        (0x16, "INVALID_MEMBER_COUNT"),
        (0x17, "MAX_LIMIT_REACHED"),
        (0x18, "INVALID_AUTH_TYPE"),
        (0x19, "AUTHENTICATION_FAILED"),
        (0x1a, "INVALID_DHCP_MODE"),
        (0x1b, "INVALID_IP_ADDRESS"),
        (0x1c, "INVALID_DOMAIN_NAME"),
        (0x1d, "UNSUPPORTED_VERSION"),
        (0x1e, "REQUEST_UNEXPECTED"),
        (0x1f, "INVALID_TABLE_TYPE"),
        (0x20, "INVALID_PROVISIONING_STATE"),
        (0x21, "UNSUPPORTED_OBJECT"),
        (0x22, "INVALID_TIME"),
        (0x23, "INVALID_INDEX"),
        (0x24, "INVALID_PARAMETER"),
        (0x25, "INVALID_NETMASK"),
        (0x26, "FLASH_WRITE_LIMIT_EXCEEDED"),
        (0x27, "INVALID_IMAGE_LENGTH"),
        (0x28, "INVALID_IMAGE_SIGNATURE"),
        (0x29, "PROPOSE_ANOTHER_VERSION"),
        (0x2a, "INVALID_PID_FORMAT"),
        (0x2b, "INVALID_PPS_FORMAT"),
        (0x2c, "BIST_COMMAND_BLOCKED"),
        (0x2d, "CONNECTION_FAILED"),
        (0x2e, "CONNECTION_TOO_MANY"),
        (0x2f, "RNG_GENERATION_IN_PROGRESS"),
        (0x30, "RNG_NOT_READY"),
        (0x31, "CERTIFICATE_NOT_READY"),
        (0x400, "DISABLED_BY_POLICY"),
        (0x800, "NETWORK_IF_ERROR_BASE"),
        (0x801, "UNSUPPORTED_OEM_NUMBER"),
        (0x802, "UNSUPPORTED_BOOT_OPTION"),
        (0x803, "INVALID_COMMAND"),
        (0x804, "INVALID_SPECIAL_COMMAND"),
        (0x805, "INVALID_HANDLE"),
        (0x806, "INVALID_PASSWORD"),
        (0x807, "INVALID_REALM"),
        (0x808, "STORAGE_ACL_ENTRY_IN_USE"),
        (0x809, "DATA_MISSING"),
        (0x80a, "DUPLICATE"),
        (0x80b, "EVENTLOG_FROZEN"),
        (0x80c, "PKI_MISSING_KEYS"),
        (0x80d, "PKI_GENERATING_KEYS"),
        (0x80e, "INVALID_KEY"),
        (0x80f, "INVALID_CERT"),
        (0x810, "CERT_KEY_NOT_MATCH"),
        (0x811, "MAX_KERB_DOMAIN_REACHED"),
        (0x812, "UNSUPPORTED"),
        (0x813, "INVALID_PRIORITY"),
        (0x814, "NOT_FOUND"),
        (0x815, "INVALID_CREDENTIALS"),
        (0x816, "INVALID_PASSPHRASE"),
        (0x818, "NO_ASSOCIATION"),
        (0x81b, "AUDIT_FAIL"),
        (0x81c, "BLOCKING_COMPONENT"),
        (0x821, "USER_CONSENT_REQUIRED"),
        (0x1000, "APP_INTERNAL_ERROR"),
        (0x1001, "NOT_INITIALIZED"),
        (0x1002, "LIB_VERSION_UNSUPPORTED"),
        (0x1003, "INVALID_PARAM"),
        (0x1004, "RESOURCES"),
        (0x1005, "HARDWARE_ACCESS_ERROR"),
        (0x1006, "REQUESTOR_NOT_REGISTERED"),
        (0x1007, "NETWORK_ERROR"),
        (0x1008, "PARAM_BUFFER_TOO_SHORT"),
        (0x1009, "COM_NOT_INITIALIZED_IN_THREAD"),
        (0x100a, "URL_REQUIRED"),
    ];
    NAMES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("UNKNOWN_ERROR", |(_, n)| n)
}

/// CIM method status names for `RequestOSPowerSavingStateChange`, as MPS reports them.
fn os_status_name(code: u32) -> &'static str {
    match code {
        0 => "COMPLETED_WITH_NO_ERROR",
        1 => "NOT_SUPPORTED",
        2 => "UNKNOWN_OR_UNSPECIFIED_ERROR",
        3 => "CANNOT_COMPLETE_WITHIN_TIMEOUT_PERIOD",
        4 => "FAILED",
        5 => "INVALID_PARAMETER",
        6 => "IN_USE",
        4096 => "METHOD_PARAMETERS_CHECKED_JOB_STARTED",
        4097 => "INVALID_STATE_TRANSITION",
        4098 => "USE_OF_TIMEOUT_PARAMETER_NOT_SUPPORTED",
        4099 => "BUSY",
        _ => "UNKNOWN_ERROR",
    }
}

// === Classes ===

const SOFTWARE_IDENTITY: Class = Class(Schema::Cim, "CIM_SoftwareIdentity");
const SETUP_AND_CONFIGURATION: Class = Class(Schema::Amt, "AMT_SetupAndConfigurationService");
const GENERAL_SETTINGS: Class = Class(Schema::Amt, "AMT_GeneralSettings");
const SERVICE_AVAILABLE_TO_ELEMENT: Class = Class(Schema::Cim, "CIM_ServiceAvailableToElement");
const IPS_POWER_MANAGEMENT: Class = Class(Schema::Ips, "IPS_PowerManagementService");
const POWER_MANAGEMENT: Class = Class(Schema::Cim, "CIM_PowerManagementService");
const COMPUTER_SYSTEM: Class = Class(Schema::Cim, "CIM_ComputerSystem");
const BOOT_CAPABILITIES: Class = Class(Schema::Amt, "AMT_BootCapabilities");
const BOOT_SETTING_DATA: Class = Class(Schema::Amt, "AMT_BootSettingData");
const BOOT_SERVICE: Class = Class(Schema::Cim, "CIM_BootService");
const BOOT_CONFIG_SETTING: Class = Class(Schema::Cim, "CIM_BootConfigSetting");
const BOOT_SOURCE_SETTING: Class = Class(Schema::Cim, "CIM_BootSourceSetting");
const REDIRECTION: Class = Class(Schema::Amt, "AMT_RedirectionService");
const OPT_IN: Class = Class(Schema::Ips, "IPS_OptInService");
const KVM: Class = Class(Schema::Cim, "CIM_KVMRedirectionSAP");
const AUDIT_LOG: Class = Class(Schema::Amt, "AMT_AuditLog");
const MESSAGE_LOG: Class = Class(Schema::Amt, "AMT_MessageLog");

/// hardwareInfo's Gets, then its enumerations, in MPS's order.
const HARDWARE_GETS: [Class; 4] = [
    Class(Schema::Cim, "CIM_ComputerSystemPackage"),
    Class(Schema::Cim, "CIM_Chassis"),
    Class(Schema::Cim, "CIM_Card"),
    Class(Schema::Cim, "CIM_BIOSElement"),
];
const HARDWARE_ENUMS: [Class; 6] = [
    Class(Schema::Cim, "CIM_Processor"),
    Class(Schema::Cim, "CIM_PhysicalMemory"),
    Class(Schema::Cim, "CIM_MediaAccessDevice"),
    Class(Schema::Cim, "CIM_PhysicalPackage"),
    Class(Schema::Cim, "CIM_SystemPackaging"),
    Class(Schema::Cim, "CIM_Chip"),
];

/// AMT's boot configuration instance that `SetBootConfigRole` makes the next boot's.
const BOOT_CONFIG_0: &str = "Intel(r) AMT: Boot Configuration 0";
/// The boot source for PXE actions (400, 401).
const BOOT_SOURCE_PXE: &str = "Intel(r) AMT: Force PXE Boot";
/// `AMT_BootSettingData` properties a Put may carry (the others are read-only and make AMT
/// answer `InvalidRepresentation`), in AMT's order.
const BOOT_SETTING_WRITABLE: [&str; 22] = [
    "BIOSPause",
    "BIOSSetup",
    "BootMediaIndex",
    "ConfigurationDataReset",
    "ElementName",
    "EnforceSecureBoot",
    "FirmwareVerbosity",
    "ForcedProgressEvents",
    "IDERBootDevice",
    "InstanceID",
    "LockKeyboard",
    "LockPowerButton",
    "LockResetButton",
    "LockSleepButton",
    "OwningEntity",
    "RSEPassword",
    "ReflashBIOS",
    "SecureErase",
    "UseIDER",
    "UseSOL",
    "UseSafeMode",
    "UserPasswordBypass",
];

// === Operation ===

/// One WS-MAN exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Get(Class),
    Enumerate(Class),
    Pull(Class, String),
    Put(Class, Vec<(String, String)>),
    Invoke(Class, &'static str, String),
}

#[derive(Debug)]
struct Pending {
    step: Step,
    /// A fault or error status skips this step (and its enumeration) instead of failing.
    optional: bool,
    message_id: String,
}

/// What the device said, by the class asked for.
#[derive(Debug, Default)]
struct Collected {
    /// Instances (Get results and Pull items) by the class asked for.
    instances: BTreeMap<&'static str, Vec<Map<String, Value>>>,
    /// Classes whose optional step was skipped.
    skipped: Vec<&'static str>,
    /// Header of the last answer.
    header: Map<String, Value>,
    /// Method results: method name, `ReturnValue`, the answer's header.
    returns: Vec<(&'static str, u32, Map<String, Value>)>,
    /// Audit log pages read: TotalRecordCount, RecordsReturned, decoded records.
    audit: Vec<(u32, u32, Vec<Value>)>,
    /// How many of the last audit page's records MPS keeps (0: all).
    audit_keep: usize,
    /// Event log records, decoded.
    events: Vec<Value>,
    event_pages: u32,
    /// What an OS power-saving change found (500/501): the state before, if read.
    os_state: Option<u64>,
}

impl Collected {
    fn first(&self, class: Class) -> Option<&Map<String, Value>> {
        self.instances.get(class.name()).and_then(|v| v.first())
    }
    fn all(&self, class: Class) -> &[Map<String, Value>] {
        self.instances.get(class.name()).map_or(&[], Vec::as_slice)
    }
}

/// One AMT route's WS-MAN exchanges, driven by the caller (see the module docs).
#[derive(Debug)]
pub struct Operation {
    req: Request,
    host: String,
    queue: VecDeque<(Step, bool)>,
    pending: Option<Pending>,
    exchanges: u32,
    failed: Option<AmtError>,
    got: Collected,
}

fn u(m: Option<&Map<String, Value>>, k: &str) -> Option<u64> {
    m?.get(k)?.as_u64()
}

fn truthy(m: Option<&Map<String, Value>>, k: &str) -> bool {
    match m.and_then(|m| m.get(k)) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(_) | Value::Object(_)) => true,
        _ => false,
    }
}

/// A property as the text a Put carries.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The instance's properties in `order` (those present), with `overrides` applied.
fn put_props(
    inst: &Map<String, Value>,
    order: &[&str],
    overrides: &[(&str, String)],
) -> Vec<(String, String)> {
    order
        .iter()
        .filter_map(|&k| {
            if let Some((_, v)) = overrides.iter().find(|(o, _)| *o == k) {
                return Some((k.to_string(), v.clone()));
            }
            inst.get(k).map(|v| (k.to_string(), text(v)))
        })
        .collect()
}

fn clean(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FAULT_TEXT)
        .collect()
}

fn local_value(s: &str) -> &str {
    let s = s.trim();
    s.rsplit_once(':').map_or(s, |(_, l)| l)
}

/// A SOAP 1.2 fault in the body, if there is one.
fn fault(env: &Element) -> Option<AmtError> {
    let f = env.path(&["Body", "Fault"])?;
    let code = f
        .path(&["Code", "Subcode", "Value"])
        .or_else(|| f.path(&["Code", "Value"]))
        .map_or("", |v| local_value(&v.text));
    let reason = f.path(&["Reason", "Text"]).map_or("", |t| t.text.as_str());
    Some(AmtError::Fault {
        code: clean(code),
        reason: clean(reason),
    })
}

fn header_map(env: &Element) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(h) = env.child("Header") {
        for k in ["To", "RelatesTo", "Action", "MessageID", "ResourceURI"] {
            if let Some(t) = h.child_text(k) {
                m.insert(k.to_string(), props::typed(t));
            }
        }
    }
    m
}

fn requested_state(n: u32) -> String {
    format!("<h:RequestedState>{n}</h:RequestedState>")
}

/// The boot settings MPS writes before an action (`setBootData` in its `powerAction.ts` and
/// `bootOptions.ts`): everything off, then what the boot action needs.
fn boot_overrides(action: u16, use_sol: bool, boot: bool) -> Vec<(&'static str, String)> {
    let flag = |b: bool| if b { "true" } else { "false" }.to_string();
    let bios_setup = boot && action < 104;
    let use_ider = boot && (200..300).contains(&action);
    let ider_device = if boot && (action == 202 || action == 203) {
        "1"
    } else {
        "0"
    };
    vec![
        ("BIOSPause", flag(false)),
        ("BIOSSetup", flag(bios_setup)),
        ("BootMediaIndex", "0".into()),
        ("ConfigurationDataReset", flag(false)),
        ("FirmwareVerbosity", "0".into()),
        ("ForcedProgressEvents", flag(false)),
        ("IDERBootDevice", ider_device.into()),
        ("LockKeyboard", flag(false)),
        ("LockPowerButton", flag(false)),
        ("LockResetButton", flag(false)),
        ("LockSleepButton", flag(false)),
        ("ReflashBIOS", flag(false)),
        ("SecureErase", flag(false)),
        ("UseIDER", flag(use_ider)),
        ("UseSOL", flag(boot && use_sol)),
        ("UseSafeMode", flag(false)),
        ("UserPasswordBypass", flag(false)),
    ]
}

fn power_change(state: u16) -> Step {
    let input = format!(
        "<h:PowerState>{state}</h:PowerState>{}",
        envelope::reference(
            "ManagedElement",
            COMPUTER_SYSTEM,
            &[
                ("CreationClassName", "CIM_ComputerSystem"),
                ("Name", "ManagedSystem")
            ],
        )
    );
    Step::Invoke(POWER_MANAGEMENT, "RequestPowerStateChange", input)
}

impl Operation {
    /// An operation for `req` on the device at `host` (`<guid>:16992`, the `Host` of each
    /// [`crate::Call`]). Call [`Request::validate`] first; an invalid request fails here at
    /// [`Operation::finish`].
    pub fn new(req: Request, host: &str) -> Self {
        let mut op = Self {
            req,
            host: host.to_string(),
            queue: VecDeque::new(),
            pending: None,
            exchanges: 0,
            failed: None,
            got: Collected::default(),
        };
        if let Err(e) = op.req.validate() {
            op.failed = Some(e);
            return op;
        }
        let plan: Vec<(Step, bool)> = match op.req {
            Request::Version => vec![
                (Step::Enumerate(SOFTWARE_IDENTITY), false),
                (Step::Get(SETUP_AND_CONFIGURATION), false),
            ],
            Request::GeneralSettings => vec![(Step::Get(GENERAL_SETTINGS), false)],
            Request::HardwareInfo => HARDWARE_GETS
                .iter()
                .map(|&c| (Step::Get(c), false))
                .chain(HARDWARE_ENUMS.iter().map(|&c| (Step::Enumerate(c), false)))
                .collect(),
            Request::PowerState => vec![
                (Step::Get(IPS_POWER_MANAGEMENT), true),
                (Step::Enumerate(SERVICE_AVAILABLE_TO_ELEMENT), false),
            ],
            Request::PowerCapabilities => vec![
                (Step::Enumerate(SOFTWARE_IDENTITY), false),
                (Step::Get(BOOT_CAPABILITIES), false),
            ],
            Request::PowerAction { action: 500 | 501 } => {
                vec![(Step::Get(IPS_POWER_MANAGEMENT), true)]
            }
            Request::PowerAction { .. } | Request::BootOptions { .. } => {
                vec![(Step::Get(BOOT_SETTING_DATA), false)]
            }
            Request::FeaturesGet => vec![
                (Step::Get(REDIRECTION), false),
                (Step::Get(OPT_IN), false),
                (Step::Get(KVM), true),
                (Step::Get(BOOT_SERVICE), true),
                (Step::Enumerate(BOOT_SOURCE_SETTING), true),
                (Step::Get(BOOT_CAPABILITIES), true),
                (Step::Get(BOOT_SETTING_DATA), true),
            ],
            Request::FeaturesSet { .. } => vec![
                (Step::Get(REDIRECTION), false),
                (Step::Get(OPT_IN), false),
                (Step::Get(KVM), true),
            ],
            Request::AuditLog { start_index } => {
                vec![(Self::read_records(start_index.max(1)), false)]
            }
            Request::EventLog => vec![(
                Step::Invoke(MESSAGE_LOG, "PositionToFirstRecord", String::new()),
                false,
            )],
        };
        op.queue.extend(plan);
        op
    }

    fn read_records(index: u32) -> Step {
        Step::Invoke(
            AUDIT_LOG,
            "ReadRecords",
            format!("<h:StartIndex>{index}</h:StartIndex>"),
        )
    }

    /// The request this operation carries out.
    pub fn request(&self) -> &Request {
        &self.req
    }

    /// The device's `Host` (`<guid>:16992`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The SOAP envelope of the next exchange, or None when there is none left (then call
    /// [`Operation::finish`]). `message_id`: a fresh id (e.g. `uuid:...`) per exchange; the
    /// device's `RelatesTo` must echo it.
    pub fn next_request(&mut self, message_id: &str) -> Option<Vec<u8>> {
        if self.failed.is_some() || self.pending.is_some() {
            return None;
        }
        let (step, optional) = self.queue.pop_front()?;
        self.exchanges += 1;
        if self.exchanges > MAX_EXCHANGES {
            self.failed = Some(AmtError::TooManyExchanges);
            self.queue.clear();
            return None;
        }
        let bytes = match &step {
            Step::Get(c) => envelope::get(*c, message_id),
            Step::Enumerate(c) => envelope::enumerate(*c, message_id),
            Step::Pull(c, ctx) => envelope::pull(*c, ctx, message_id),
            Step::Put(c, p) => envelope::put(*c, p, message_id),
            Step::Invoke(c, m, input) => envelope::invoke(*c, m, input, message_id),
        };
        self.pending = Some(Pending {
            step,
            optional,
            message_id: message_id.to_string(),
        });
        Some(bytes)
    }

    /// Feeds the HTTP answer to the last envelope: its status and de-chunked body. An error
    /// ends the operation ([`Operation::finish`] returns it too).
    pub fn on_response(&mut self, status: u16, body: &[u8]) -> Result<(), AmtError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let Some(p) = self.pending.take() else {
            return Err(AmtError::Sequence("no request outstanding"));
        };
        let r = self.answer(&p, status, body);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
            self.queue.clear();
        }
        r
    }

    fn skip(&mut self, p: &Pending) -> Result<(), AmtError> {
        let class = match &p.step {
            Step::Get(c) | Step::Enumerate(c) | Step::Pull(c, _) => c.name(),
            Step::Put(c, _) | Step::Invoke(c, _, _) => c.name(),
        };
        self.got.skipped.push(class);
        self.got.instances.remove(class);
        self.after(&p.step)
    }

    fn answer(&mut self, p: &Pending, status: u16, body: &[u8]) -> Result<(), AmtError> {
        if body.len() > crate::MAX_BODY {
            return Err(AmtError::BadResponse("answer too large"));
        }
        let doc = if body.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            Some(xml::parse(body))
        };
        if status != 200 {
            let err = match doc {
                Some(Ok(env)) => fault(&env).unwrap_or(AmtError::Http(status)),
                _ => AmtError::Http(status),
            };
            return if p.optional { self.skip(p) } else { Err(err) };
        }
        let env = doc.ok_or(AmtError::BadResponse("empty answer"))??;
        if env.name != "Envelope" {
            return Err(AmtError::BadResponse("not a SOAP envelope"));
        }
        if let Some(f) = fault(&env) {
            return if p.optional { self.skip(p) } else { Err(f) };
        }
        if let Some(rel) = env.path(&["Header", "RelatesTo"])
            && rel.text.trim() != p.message_id
        {
            return Err(AmtError::BadResponse("answer relates to another request"));
        }
        let body_el = env
            .child("Body")
            .ok_or(AmtError::BadResponse("no SOAP body"))?;
        self.got.header = header_map(&env);
        match &p.step {
            Step::Get(c) => {
                let inst = body_el
                    .child(c.name())
                    .ok_or(AmtError::BadResponse("instance missing from Get answer"))?;
                self.got
                    .instances
                    .entry(c.name())
                    .or_default()
                    .push(props::instance(inst));
            }
            Step::Enumerate(c) => {
                let ctx = body_el
                    .path(&["EnumerateResponse", "EnumerationContext"])
                    .map(|e| e.text.trim())
                    .filter(|t| !t.is_empty())
                    .ok_or(AmtError::BadResponse("no enumeration context"))?;
                self.got.instances.entry(c.name()).or_default();
                self.queue
                    .push_front((Step::Pull(*c, ctx.to_string()), p.optional));
                return Ok(());
            }
            Step::Pull(c, _) => {
                let pr = body_el
                    .child("PullResponse")
                    .ok_or(AmtError::BadResponse("no PullResponse"))?;
                let list = self.got.instances.entry(c.name()).or_default();
                if let Some(items) = pr.child("Items") {
                    for it in &items.children {
                        if list.len() >= records::MAX_RECORDS {
                            return Err(AmtError::BadResponse("too many items"));
                        }
                        list.push(props::instance(it));
                    }
                }
                if pr.child("EndOfSequence").is_none() {
                    let ctx = pr
                        .child_text("EnumerationContext")
                        .filter(|t| !t.is_empty())
                        .ok_or(AmtError::BadResponse("Pull neither ended nor continued"))?;
                    self.queue
                        .push_front((Step::Pull(*c, ctx.to_string()), p.optional));
                    return Ok(());
                }
            }
            Step::Put(..) => {}
            Step::Invoke(_, method, _) => {
                let out = body_el
                    .children
                    .iter()
                    .find(|e| e.name.strip_suffix("_OUTPUT") == Some(*method))
                    .ok_or(AmtError::BadResponse("method output missing"))?;
                let rv = out
                    .child_text("ReturnValue")
                    .and_then(|t| t.parse::<u32>().ok())
                    .ok_or(AmtError::BadResponse("no ReturnValue"))?;
                let header = self.got.header.clone();
                self.got.returns.push((*method, rv, header));
                self.invoked(method, rv, out)?;
            }
        }
        self.after(&p.step)
    }

    /// Method results the operation depends on.
    fn invoked(&mut self, method: &'static str, rv: u32, out: &Element) -> Result<(), AmtError> {
        match method {
            "ReadRecords" => {
                if rv != 0 {
                    return Err(AmtError::ReturnValue { method, value: rv });
                }
                let num = |k: &str| {
                    out.child_text(k)
                        .and_then(|t| t.parse::<u32>().ok())
                        .ok_or(AmtError::BadResponse("audit log counts missing"))
                };
                let (total, returned) = (num("TotalRecordCount")?, num("RecordsReturned")?);
                let mut recs = Vec::new();
                for r in out
                    .children_named("EventRecords")
                    .take(records::MAX_RECORDS)
                {
                    let raw =
                        records::b64(&r.text).ok_or(AmtError::BadResponse("bad base64 record"))?;
                    recs.push(
                        records::audit_record(&raw)
                            .ok_or(AmtError::BadResponse("truncated audit record"))?,
                    );
                }
                let first = self.got.audit.is_empty();
                self.got.audit.push((total, returned, recs));
                if first
                    && total > returned
                    && let Request::AuditLog { start_index } = self.req
                {
                    // MPS serves newest first: read the last page instead (its `auditLog.ts`).
                    let (t, s, r) = (
                        i64::from(total),
                        i64::from(start_index),
                        i64::from(returned),
                    );
                    let mut index = t - s - r;
                    if index < r {
                        self.got.audit_keep = usize::try_from(returned).unwrap_or(0);
                        index = 1;
                    }
                    let index = u32::try_from(index.max(1)).unwrap_or(1);
                    self.queue.push_front((Self::read_records(index), false));
                }
            }
            "PositionToFirstRecord" | "GetRecords" => {
                if rv != 0 {
                    return Err(AmtError::ReturnValue { method, value: rv });
                }
                let id = out
                    .child_text("IterationIdentifier")
                    .and_then(|t| t.parse::<u32>().ok())
                    .ok_or(AmtError::BadResponse("no IterationIdentifier"))?;
                let more = if method == "GetRecords" {
                    self.got.event_pages += 1;
                    for r in out.children_named("RecordArray") {
                        if self.got.events.len() >= records::MAX_RECORDS * 4 {
                            break;
                        }
                        let raw = records::b64(&r.text)
                            .ok_or(AmtError::BadResponse("bad base64 record"))?;
                        self.got.events.extend(records::event_record(&raw));
                    }
                    props::typed(out.child_text("NoMoreRecords").unwrap_or("true"))
                        != Value::Bool(true)
                        && self.got.event_pages < MAX_EVENT_PAGES
                } else {
                    true
                };
                if more {
                    let input = format!(
                        "<h:IterationIdentifier>{id}</h:IterationIdentifier>\
                         <h:MaxReadRecords>390</h:MaxReadRecords>"
                    );
                    self.queue
                        .push_front((Step::Invoke(MESSAGE_LOG, "GetRecords", input), false));
                }
            }
            // What features/set changes must take, or the features would silently stay.
            "RequestStateChange" if matches!(self.req, Request::FeaturesSet { .. }) => {
                let is_boot = self
                    .got
                    .header
                    .get("ResourceURI")
                    .and_then(Value::as_str)
                    .is_some_and(|r| r.ends_with("CIM_BootService"));
                if rv != 0 && !is_boot {
                    return Err(AmtError::ReturnValue { method, value: rv });
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Plans what follows a finished (or skipped) step.
    fn after(&mut self, step: &Step) -> Result<(), AmtError> {
        let req = self.req.clone();
        match (&req, step) {
            (
                Request::PowerAction {
                    action: a @ (500 | 501),
                },
                Step::Get(c),
            ) if *c == IPS_POWER_MANAGEMENT => {
                let target = if *a == 500 { 2 } else { 3 };
                let now =
                    u(self.got.first(IPS_POWER_MANAGEMENT), "OSPowerSavingState").unwrap_or(0);
                self.got.os_state = Some(now);
                if now >= 2 && now != target {
                    let input = format!(
                        "<h:OSPowerSavingState>{target}</h:OSPowerSavingState>{}",
                        envelope::reference(
                            "ManagedElement",
                            COMPUTER_SYSTEM,
                            &[
                                ("CreationClassName", "CIM_ComputerSystem"),
                                ("Name", "ManagedSystem")
                            ],
                        )
                    );
                    self.queue.push_back((
                        Step::Invoke(
                            IPS_POWER_MANAGEMENT,
                            "RequestOSPowerSavingStateChange",
                            input,
                        ),
                        false,
                    ));
                }
            }
            (Request::PowerAction { action }, Step::Get(c)) if *c == BOOT_SETTING_DATA => {
                let action = *action;
                let inst = self
                    .got
                    .first(BOOT_SETTING_DATA)
                    .cloned()
                    .unwrap_or_default();
                let p = put_props(
                    &inst,
                    &BOOT_SETTING_WRITABLE,
                    &boot_overrides(action, false, false),
                );
                self.queue
                    .push_back((Step::Put(BOOT_SETTING_DATA, p), false));
                if DMTF_POWER_STATES.contains(&action) {
                    self.queue.push_back((power_change(action), false));
                }
            }
            (Request::BootOptions { action, use_sol }, Step::Get(c)) if *c == BOOT_SETTING_DATA => {
                let (action, use_sol) = (*action, *use_sol);
                let inst = self
                    .got
                    .first(BOOT_SETTING_DATA)
                    .cloned()
                    .unwrap_or_default();
                let p = put_props(
                    &inst,
                    &BOOT_SETTING_WRITABLE,
                    &boot_overrides(action, use_sol, true),
                );
                self.queue
                    .push_back((Step::Put(BOOT_SETTING_DATA, p), false));
                let role = format!(
                    "{}<h:Role>1</h:Role>",
                    envelope::reference(
                        "BootConfigSetting",
                        BOOT_CONFIG_SETTING,
                        &[("InstanceID", BOOT_CONFIG_0)]
                    )
                );
                self.queue
                    .push_back((Step::Invoke(BOOT_SERVICE, "SetBootConfigRole", role), false));
                let source = if action == 400 || action == 401 {
                    envelope::reference(
                        "Source",
                        BOOT_SOURCE_SETTING,
                        &[("InstanceID", BOOT_SOURCE_PXE)],
                    )
                } else {
                    String::new()
                };
                self.queue.push_back((
                    Step::Invoke(BOOT_CONFIG_SETTING, "ChangeBootOrder", source),
                    false,
                ));
                let reset = matches!(action, 101 | 200 | 202 | 301 | 400);
                self.queue
                    .push_back((power_change(if reset { 10 } else { 2 }), false));
            }
            (
                Request::FeaturesSet {
                    user_consent,
                    enable_sol,
                    enable_ider,
                    enable_kvm,
                    ocr,
                },
                Step::Get(c),
            ) if *c == KVM => {
                let (consent, want_sol, want_ider, want_kvm, ocr) =
                    (*user_consent, *enable_sol, *enable_ider, *enable_kvm, *ocr);
                self.plan_features_set(consent, want_sol, want_ider, want_kvm, ocr)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// MPS's `setAMTFeatures`: change redirection (SOL/IDER state, KVM, listener), consent and
    /// OCR only where they differ from what the device has.
    fn plan_features_set(
        &mut self,
        consent: UserConsent,
        want_sol: bool,
        want_ider: bool,
        want_kvm: bool,
        ocr: Option<bool>,
    ) -> Result<(), AmtError> {
        let redir_inst = self
            .got
            .first(REDIRECTION)
            .cloned()
            .ok_or(AmtError::BadResponse("no AMT_RedirectionService"))?;
        let kvm_inst = self.got.first(KVM);
        let kvm_available = kvm_inst.is_some();
        let state = u(Some(&redir_inst), "EnabledState").unwrap_or(0);
        let mut redir = truthy(Some(&redir_inst), "ListenerEnabled");
        let (mut sol, mut ider) = (state & 2 != 0, state & 1 != 0);
        let mut kvm = matches!(u(kvm_inst, "EnabledState"), Some(2 | 6));
        if want_kvm && !kvm_available {
            return Err(AmtError::NotSupported("KVM"));
        }
        let mut changed = false;
        if want_sol != sol {
            sol = want_sol;
            changed = true;
        }
        if want_ider != ider {
            ider = want_ider;
            changed = true;
        }
        if (sol || ider) && !redir {
            changed = true;
        }
        if want_kvm != kvm {
            kvm = want_kvm;
            changed = true;
        }
        if changed {
            redir = sol || ider || kvm;
            let new_state = 32768 + u32::from(ider) + 2 * u32::from(sol);
            self.queue.push_back((
                Step::Invoke(
                    REDIRECTION,
                    "RequestStateChange",
                    requested_state(new_state),
                ),
                false,
            ));
            if kvm_available {
                self.queue.push_back((
                    Step::Invoke(
                        KVM,
                        "RequestStateChange",
                        requested_state(if kvm { 2 } else { 3 }),
                    ),
                    false,
                ));
            }
            let p = put_props(
                &redir_inst,
                props::of("AMT_RedirectionService"),
                &[
                    ("EnabledState", new_state.to_string()),
                    ("ListenerEnabled", redir.to_string()),
                ],
            );
            self.queue.push_back((Step::Put(REDIRECTION, p), false));
        }
        let opt_in = self
            .got
            .first(OPT_IN)
            .cloned()
            .ok_or(AmtError::BadResponse("no IPS_OptInService"))?;
        let want = consent.opt_in_required();
        if u(Some(&opt_in), "OptInRequired") != Some(u64::from(want)) {
            let p = put_props(
                &opt_in,
                props::of("IPS_OptInService"),
                &[("OptInRequired", want.to_string())],
            );
            self.queue.push_back((Step::Put(OPT_IN, p), false));
        }
        if let Some(on) = ocr {
            self.queue.push_back((
                Step::Invoke(
                    BOOT_SERVICE,
                    "RequestStateChange",
                    requested_state(if on { 32769 } else { 32768 }),
                ),
                false,
            ));
        }
        Ok(())
    }

    /// The MPS-shaped JSON answer, once [`Operation::next_request`] returned None.
    pub fn finish(self) -> Result<Value, AmtError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.pending.is_some() || !self.queue.is_empty() {
            return Err(AmtError::Sequence("operation not finished"));
        }
        let g = &self.got;
        let v = match self.req {
            Request::Version => json!({
                "CIM_SoftwareIdentity": {
                    "responses": g.all(SOFTWARE_IDENTITY),
                    "status": 200,
                },
                "AMT_SetupAndConfigurationService": {
                    "response": g.first(SETUP_AND_CONFIGURATION),
                    "status": 200,
                },
            }),
            Request::GeneralSettings => json!({
                "Header": g.header,
                "Body": g.first(GENERAL_SETTINGS),
            }),
            Request::HardwareInfo => {
                let mut m = Map::new();
                for c in HARDWARE_GETS {
                    let one = g.first(c);
                    m.insert(
                        c.name().to_string(),
                        json!({ "response": one, "responses": [one], "status": 200 }),
                    );
                }
                for c in HARDWARE_ENUMS {
                    m.insert(
                        c.name().to_string(),
                        json!({ "responses": g.all(c), "status": 200 }),
                    );
                }
                Value::Object(m)
            }
            Request::PowerState => {
                let state = g
                    .all(SERVICE_AVAILABLE_TO_ELEMENT)
                    .iter()
                    .find_map(|i| i.get("PowerState").and_then(Value::as_u64))
                    .ok_or(AmtError::BadResponse("no PowerState"))?;
                let mut m = Map::new();
                m.insert("powerstate".into(), state.into());
                if let Some(os) = u(g.first(IPS_POWER_MANAGEMENT), "OSPowerSavingState") {
                    m.insert("OSPowerSavingState".into(), os.into());
                }
                Value::Object(m)
            }
            Request::PowerCapabilities => capabilities(g),
            Request::PowerAction { action: 500 | 501 } => {
                let (rv, name) = match (g.os_state, g.returns.last()) {
                    (_, Some((_, rv, _))) => (*rv, os_status_name(*rv)),
                    (Some(0) | None, None) => (1, "OS_POWER_STATE_UNKNOWN"),
                    (Some(1), None) => (2, "OS_POWER_STATE_UNSUPPORTED"),
                    (Some(_), None) => (0, os_status_name(0)),
                };
                json!({ "Body": { "ReturnValue": rv, "ReturnValueStr": name } })
            }
            Request::PowerAction { .. } | Request::BootOptions { .. } => {
                match g
                    .returns
                    .iter()
                    .rev()
                    .find(|r| r.0 == "RequestPowerStateChange")
                {
                    Some((_, rv, header)) => json!({
                        "Header": header,
                        "Body": { "ReturnValue": rv, "ReturnValueStr": status_name(*rv) },
                    }),
                    // An extended action on power/action: MPS answers INVALID_PARAMETER.
                    None => json!({
                        "Body": { "ReturnValue": 0x24, "ReturnValueStr": status_name(0x24) },
                    }),
                }
            }
            Request::FeaturesGet => features(g),
            Request::FeaturesSet { .. } => json!({ "status": "Updated AMT Features" }),
            Request::AuditLog { .. } => {
                let (total, _, recs) = g
                    .audit
                    .last()
                    .ok_or(AmtError::BadResponse("no audit log page"))?;
                let mut recs: Vec<Value> = recs.iter().rev().cloned().collect();
                if g.audit_keep > 0 && g.audit_keep < recs.len() {
                    recs = recs.split_off(recs.len() - g.audit_keep);
                }
                json!({ "totalCnt": total, "records": recs })
            }
            Request::EventLog => Value::Array(g.events.clone()),
        };
        Ok(v)
    }
}

/// MPS's `bootCapabilities`: the actions the device offers, by name.
fn capabilities(g: &Collected) -> Value {
    let major = g
        .all(SOFTWARE_IDENTITY)
        .iter()
        .find(|i| i.get("InstanceID").and_then(Value::as_str) == Some("AMT"))
        .and_then(|i| match i.get("VersionString") {
            Some(Value::String(s)) => s.split('.').next()?.parse::<u32>().ok(),
            Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            _ => None,
        });
    let caps = g.first(BOOT_CAPABILITIES);
    let mut m = Map::new();
    let mut add = |k: &str, v: u16| {
        m.insert(k.to_string(), v.into());
    };
    add("Power up", 2);
    add("Power cycle", 5);
    add("Power down", 8);
    add("Reset", 10);
    if major.is_some_and(|v| v > 9) {
        add("Soft-off", 12);
        add("Soft-reset", 14);
        add("Sleep", 4);
        add("Hibernate", 7);
    }
    let is = |k: &str| caps.and_then(|c| c.get(k)) == Some(&Value::Bool(true));
    if is("BIOSSetup") {
        add("Power up to BIOS", 100);
        add("Reset to BIOS", 101);
    }
    if is("SecureErase") {
        add("Reset to Secure Erase", 104);
    }
    add("Reset to IDE-R Floppy", 200);
    add("Power on to IDE-R Floppy", 201);
    add("Reset to IDE-R CDROM", 202);
    add("Power on to IDE-R CDROM", 203);
    if is("ForceDiagnosticBoot") {
        add("Power on to diagnostic", 300);
        add("Reset to diagnostic", 301);
    }
    add("Reset to PXE", 400);
    add("Power on to PXE", 401);
    Value::Object(m)
}

/// MPS's `getAMTFeatures`.
fn features(g: &Collected) -> Value {
    let redir = g.first(REDIRECTION);
    let state = u(redir, "EnabledState").unwrap_or(0);
    let kvm = g.first(KVM);
    let opt = g.first(OPT_IN);
    let consent = u(opt, "OptInRequired")
        .and_then(UserConsent::from_opt_in)
        .map(UserConsent::as_str);
    let boot_service = g.first(BOOT_SERVICE);
    let caps = g.first(BOOT_CAPABILITIES);
    let data = g.first(BOOT_SETTING_DATA);
    let (mut https, mut winre, mut pba) = (false, false, false);
    for s in g.all(BOOT_SOURCE_SETTING) {
        let id = s.get("InstanceID").and_then(Value::as_str).unwrap_or("");
        let bios = s
            .get("BIOSBootString")
            .and_then(Value::as_str)
            .unwrap_or("");
        https |= id.starts_with("Intel(r) AMT: Force OCR UEFI HTTPS Boot");
        if id.starts_with("Intel(r) AMT: Force OCR UEFI Boot Option") {
            winre |= bios.contains("WinRe");
            pba |= bios.contains("PBA");
        }
    }
    json!({
        "userConsent": consent,
        "redirection": truthy(redir, "ListenerEnabled"),
        "KVM": matches!(u(kvm, "EnabledState"), Some(2 | 6)),
        "SOL": state & 2 != 0,
        "IDER": state & 1 != 0,
        "optInState": u(opt, "OptInState"),
        "kvmAvailable": kvm.is_some(),
        "ocr": matches!(u(boot_service, "EnabledState"), Some(32769 | 32771)),
        "httpsBootSupported": https
            && truthy(caps, "ForceUEFIHTTPSBoot")
            && truthy(data, "UEFIHTTPSBootEnabled"),
        "winREBootSupported": winre
            && truthy(data, "WinREBootEnabled")
            && truthy(caps, "ForceWinREBoot"),
        "localPBABootSupported": pba
            && truthy(data, "UEFILocalPBABootEnabled")
            && truthy(caps, "ForceUEFIPBABoot"),
        "remoteErase": truthy(data, "PlatformErase") && u(caps, "PlatformErase").unwrap_or(0) != 0,
    })
}

#[cfg(test)]
mod tests;
