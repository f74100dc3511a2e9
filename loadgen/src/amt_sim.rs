//! The WS-MAN side of a simulated Intel AMT device: what [`crate::amt::WsmanResponder`] answers
//! once a request is authorised, with the device state MPS's routes read and change.
//!
//! It answers the exchanges behind MPS's `/amt/*` routes the way AMT does (SOAP 1.2 with AMT's
//! `a:`..`h:` prefixes, `RelatesTo` echoing the request's `MessageID`, AMT's fault for an unknown
//! resource) and keeps what they change in an [`AmtState`]: power state, OS power saving,
//! redirection (SOL, IDER, KVM, listener), user consent, OCR, boot settings, and the audit and
//! event logs (real binary record layouts, base64 encoded).
//!
//! It is a test double, not a parser for hostile input: requests are read with plain string
//! search, which is enough for what our own client sends.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

const NS_SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
const NS_ADDR: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
const NS_WSMAN: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd";
const NS_ENUM: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration";
const NS_TRANSFER: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer";
const AMT: &str = "http://intel.com/wbem/wscim/1/amt-schema/1/";
const CIM: &str = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/";
const IPS: &str = "http://intel.com/wbem/wscim/1/ips-schema/1/";

/// Enumerations kept open at once (older contexts are forgotten, as AMT expires them).
const MAX_CONTEXTS: usize = 16;

/// The simulated device's state, shared by every WS-MAN channel of a [`crate::amt::Device`].
#[derive(Debug, Clone)]
pub struct AmtState {
    /// DMTF power state: 2 on, 4 sleep, 7 hibernate, 8 off (soft).
    pub power_state: u16,
    /// `IPS_PowerManagementService.OSPowerSavingState`: 2 full power, 3 power saving.
    pub os_power_saving_state: u16,
    /// `AMT_RedirectionService.ListenerEnabled`.
    pub listener_enabled: bool,
    /// Serial-over-LAN enabled.
    pub sol: bool,
    /// IDE redirection enabled.
    pub ider: bool,
    /// KVM enabled (`CIM_KVMRedirectionSAP`).
    pub kvm: bool,
    /// `IPS_OptInService.OptInRequired`: 0 none, 1 KVM, 0xFFFFFFFF all.
    pub opt_in_required: u32,
    /// One-click recovery (`CIM_BootService` state 32769).
    pub ocr: bool,
    /// `AMT_BootSettingData` as last written (property, value).
    pub boot_settings: BTreeMap<String, String>,
    /// The boot source `ChangeBootOrder` set (None: cleared).
    pub boot_source: Option<String>,
    /// Requested power states, in order, with the `ReturnValue` each got.
    pub power_requests: Vec<(u16, u32)>,
    /// Audit log records (binary, oldest first).
    pub audit_log: Vec<Vec<u8>>,
    /// Event log records (21 bytes each, oldest first).
    pub event_log: Vec<[u8; 21]>,
    /// `CIM_SoftwareIdentity` "AMT" version.
    pub amt_version: String,
    contexts: VecDeque<(String, Vec<String>)>,
    next_id: u64,
}

fn audit(app: u16, event: u16, initiator: &[u8], time: u32, net: &str, ex: &[u8]) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(&app.to_be_bytes());
    r.extend_from_slice(&event.to_be_bytes());
    r.extend_from_slice(initiator);
    r.extend_from_slice(&time.to_be_bytes());
    r.push(0);
    r.push(net.len() as u8);
    r.extend_from_slice(net.as_bytes());
    r.push(ex.len() as u8);
    r.extend_from_slice(ex);
    r
}

fn digest_initiator(user: &str) -> Vec<u8> {
    let mut v = vec![0, user.len() as u8];
    v.extend_from_slice(user.as_bytes());
    v
}

fn event(time: u32, sensor: u8, offset: u8, entity: u8, data: [u8; 8]) -> [u8; 21] {
    let mut r = [0u8; 21];
    r[..4].copy_from_slice(&time.to_le_bytes());
    r[4] = 0xff;
    r[5] = sensor;
    r[6] = 0x6f;
    r[7] = offset;
    r[8] = 0x68;
    r[9] = 0x10;
    r[10] = 0xff;
    r[11] = entity;
    r[12] = 0;
    r[13..].copy_from_slice(&data);
    r
}

impl Default for AmtState {
    fn default() -> Self {
        let boot_settings = [
            ("BIOSPause", "false"),
            ("BIOSSetup", "false"),
            ("BootMediaIndex", "0"),
            ("ConfigurationDataReset", "false"),
            ("ElementName", "Intel(r) AMT Boot Configuration Settings"),
            ("EnforceSecureBoot", "false"),
            ("FirmwareVerbosity", "0"),
            ("ForcedProgressEvents", "false"),
            ("IDERBootDevice", "0"),
            ("InstanceID", "Intel(r) AMT:BootSettingData 0"),
            ("LockKeyboard", "false"),
            ("LockPowerButton", "false"),
            ("LockResetButton", "false"),
            ("LockSleepButton", "false"),
            ("OwningEntity", "Intel(r) AMT"),
            ("ReflashBIOS", "false"),
            ("SecureErase", "false"),
            ("UseIDER", "false"),
            ("UseSOL", "false"),
            ("UseSafeMode", "false"),
            ("UserPasswordBypass", "false"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Self {
            power_state: 2,
            os_power_saving_state: 2,
            listener_enabled: true,
            sol: true,
            ider: true,
            kvm: true,
            opt_in_required: 1,
            ocr: false,
            boot_settings,
            boot_source: None,
            power_requests: Vec::new(),
            audit_log: vec![
                // Provisioning completed (local), a firmware update, a digest user's KVM enable.
                audit(16, 1, &[2], 1_700_000_000, "", &[]),
                audit(
                    19,
                    0,
                    &[2],
                    1_700_000_100,
                    "",
                    &[0, 16, 0, 1, 0, 25, 0, 7, 0, 16, 0, 1, 0, 25, 0, 9],
                ),
                audit(
                    18,
                    10,
                    &digest_initiator("admin"),
                    1_700_000_200,
                    "10.0.0.5",
                    &[],
                ),
            ],
            event_log: vec![
                event(1_704_511_587, 6, 5, 38, [0xaa, 10, 0, 0, 0, 0, 0, 0]),
                event(1_704_511_600, 15, 2, 34, [0x40, 7, 0, 0, 0, 0, 0, 0]),
                event(1_704_511_700, 37, 0, 34, [0; 8]),
            ],
            amt_version: "16.1.25".into(),
            contexts: VecDeque::new(),
            next_id: 0x2000,
        }
    }
}

// === Reading requests ===

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The text of the first element with this local name (any prefix, no attributes).
fn tag(xml: &str, local: &str) -> Option<String> {
    let mut from = 0;
    while let Some(i) = xml[from..].find(local) {
        let at = from + i;
        from = at + local.len();
        let before = &xml[..at];
        let ok_start = before.ends_with('<')
            || before.strip_suffix(':').is_some_and(|b| {
                b.rfind('<')
                    .is_some_and(|lt| b[lt + 1..].chars().all(|c| c.is_ascii_alphanumeric()))
            });
        if !ok_start || !xml[from..].starts_with('>') {
            continue;
        }
        let start = from + 1;
        let end = xml[start..].find("</")? + start;
        return Some(unescape(xml[start..end].trim()));
    }
    None
}

/// (name, value) pairs of the simple children of the element with local name `parent`.
fn children(xml: &str, parent: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(open) = xml
        .find(&format!(":{parent} "))
        .or_else(|| xml.find(&format!(":{parent}>")))
    else {
        return out;
    };
    let Some(gt) = xml[open..].find('>') else {
        return out;
    };
    let mut rest = &xml[open + gt + 1..];
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        if rest.starts_with('/') {
            break;
        }
        let Some(close) = rest.find('>') else { break };
        let qname = &rest[..close];
        let name = qname.rsplit(':').next().unwrap_or(qname).to_string();
        let body = &rest[close + 1..];
        let Some(end) = body.find("</") else { break };
        out.push((name, unescape(&body[..end])));
        let Some(after) = body[end..].find('>') else {
            break;
        };
        rest = &body[end + after + 1..];
    }
    out
}

// === Writing answers ===

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn instance<K: AsRef<str>>(prefix: &str, class: &str, props: &[(K, String)]) -> String {
    let mut x = format!("<{prefix}:{class}>");
    for (k, v) in props {
        let k = k.as_ref();
        let _ = write!(x, "<{prefix}:{k}>{}</{prefix}:{k}>", esc(v));
    }
    let _ = write!(x, "</{prefix}:{class}>");
    x
}

fn class_ns(class: &str) -> String {
    let base = if class.starts_with("AMT_") {
        AMT
    } else if class.starts_with("IPS_") {
        IPS
    } else {
        CIM
    };
    format!("{base}{class}")
}

/// A whole answer: status and XML.
pub(crate) type Answer = (u16, String);

struct Req {
    action: String,
    resource: String,
    message_id: String,
    xml: String,
}

impl AmtState {
    fn envelope(&mut self, req: &Req, action: &str, g: &str, h: &str, body: &str) -> String {
        self.next_id += 1;
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a:Envelope xmlns:a=\"{NS_SOAP}\" \
             xmlns:b=\"{NS_ADDR}\" xmlns:c=\"{NS_WSMAN}\" \
             xmlns:d=\"http://schemas.xmlsoap.org/ws/2005/02/trust\" \
             xmlns:e=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\" \
             xmlns:f=\"http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd\" xmlns:g=\"{g}\" \
             xmlns:h=\"{h}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><a:Header>\
             <b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To>\
             <b:RelatesTo>{}</b:RelatesTo><b:Action a:mustUnderstand=\"true\">{action}</b:Action>\
             <b:MessageID>uuid:00000000-8086-8086-8086-{:012X}</b:MessageID>\
             <c:ResourceURI>{}</c:ResourceURI></a:Header><a:Body>{body}</a:Body></a:Envelope>",
            esc(&req.message_id),
            self.next_id,
            esc(&req.resource),
        )
    }

    fn fault(&mut self, req: &Req, sub: &str, reason: &str) -> Answer {
        self.next_id += 1;
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a:Envelope \
             xmlns:b=\"{NS_ADDR}\" xmlns:c=\"{NS_ENUM}\" xmlns:e=\"{NS_WSMAN}\" \
             xmlns:a=\"{NS_SOAP}\"><a:Header>\
             <b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To>\
             <b:RelatesTo>{}</b:RelatesTo><b:Action a:mustUnderstand=\"true\">\
             http://schemas.xmlsoap.org/ws/2004/08/addressing/fault</b:Action>\
             <b:MessageID>uuid:00000000-8086-8086-8086-{:012X}</b:MessageID></a:Header>\
             <a:Body><a:Fault><a:Code><a:Value>a:Sender</a:Value><a:Subcode>\
             <a:Value>{sub}</a:Value></a:Subcode></a:Code><a:Reason>\
             <a:Text xml:lang=\"en-US\">{reason}</a:Text></a:Reason><a:Detail></a:Detail>\
             </a:Fault></a:Body></a:Envelope>",
            esc(&req.message_id),
            self.next_id
        );
        (400, xml)
    }

    fn unreachable(&mut self, req: &Req) -> Answer {
        self.fault(
            req,
            "b:DestinationUnreachable",
            "No route can be determined to reach the destination role defined by the \
             WSAddressing To.",
        )
    }

    fn get_response(&mut self, req: &Req, class: &str, props: &[(String, String)]) -> Answer {
        let ns = class_ns(class);
        let body = instance("g", class, props);
        (
            200,
            self.envelope(
                req,
                &format!("{NS_TRANSFER}/GetResponse"),
                &ns,
                "urn:none",
                &body,
            ),
        )
    }

    fn output(&mut self, req: &Req, class: &str, method: &str, fields: &str) -> Answer {
        let ns = class_ns(class);
        let body = format!("<g:{method}_OUTPUT>{fields}</g:{method}_OUTPUT>");
        (
            200,
            self.envelope(
                req,
                &format!("{ns}/{method}Response"),
                &ns,
                "urn:none",
                &body,
            ),
        )
    }

    fn rv(&mut self, req: &Req, class: &str, method: &str, rv: u32) -> Answer {
        self.output(
            req,
            class,
            method,
            &format!("<g:ReturnValue>{rv}</g:ReturnValue>"),
        )
    }

    /// The instance a Get of `class` returns, or None for a class the device lacks.
    fn instance_props(&self, class: &str) -> Option<Vec<(String, String)>> {
        if class == "AMT_BootSettingData" {
            let b = |v: bool| v.to_string();
            let mut v: Vec<(String, String)> = self
                .boot_settings
                .iter()
                .map(|(k, val)| (k.clone(), val.clone()))
                .collect();
            v.push(("BIOSLastStatus".into(), "2".into()));
            v.push(("OptionsCleared".into(), b(self.boot_source.is_none())));
            v.push(("UEFIHTTPSBootEnabled".into(), b(true)));
            v.push(("UEFILocalPBABootEnabled".into(), b(false)));
            v.push(("WinREBootEnabled".into(), b(false)));
            v.sort_by(|a, b| a.0.cmp(&b.0));
            return Some(v);
        }
        self.static_props(class)
            .map(|v| v.into_iter().map(|(k, val)| (k.to_string(), val)).collect())
    }

    fn static_props(&self, class: &str) -> Option<Vec<(&'static str, String)>> {
        let s = |v: &str| v.to_string();
        let b = |v: bool| v.to_string();
        Some(match class {
            "AMT_GeneralSettings" => vec![
                ("AMTNetworkEnabled", s("1")),
                ("DDNSPeriodicUpdateInterval", s("1440")),
                ("DDNSTTL", s("900")),
                ("DDNSUpdateByDHCPServerEnabled", s("true")),
                ("DDNSUpdateEnabled", s("false")),
                ("DHCPv6ConfigurationTimeout", s("0")),
                ("DigestRealm", s("Digest:A3829B3827DE4D33D4449B366831FD01")),
                ("DomainName", s("vprodemo.com")),
                ("ElementName", s("Intel(r) AMT: General Settings")),
                ("HostName", s("sim-device")),
                ("HostOSFQDN", s("sim-device.vprodemo.com")),
                ("IdleWakeTimeout", s("65535")),
                ("InstanceID", s("Intel(r) AMT: General Settings")),
                ("NetworkInterfaceEnabled", s("true")),
                ("PingResponseEnabled", s("true")),
                ("PowerSource", s("0")),
                ("PreferredAddressFamily", s("0")),
                ("PresenceNotificationInterval", s("0")),
                ("PrivacyLevel", s("0")),
                ("RmcpPingResponseEnabled", s("true")),
                ("SharedFQDN", s("true")),
                ("ThunderboltDockEnabled", s("0")),
                ("WsmanOnlyMode", s("false")),
            ],
            "AMT_SetupAndConfigurationService" => vec![
                ("CreationClassName", s("AMT_SetupAndConfigurationService")),
                (
                    "ElementName",
                    s("Intel(r) AMT Setup and Configuration Service"),
                ),
                ("EnabledState", s("5")),
                ("Name", s("Intel(r) AMT Setup and Configuration Service")),
                ("PasswordModel", s("1")),
                ("ProvisioningMode", s("1")),
                ("ProvisioningServerOID", s("")),
                ("ProvisioningState", s("2")),
                ("RequestedState", s("12")),
                ("SystemCreationClassName", s("CIM_ComputerSystem")),
                ("SystemName", s("Intel(r) AMT")),
                ("ZeroTouchConfigurationEnabled", s("true")),
            ],
            "AMT_BootCapabilities" => vec![
                ("BIOSPause", b(false)),
                ("BIOSReflash", b(true)),
                ("BIOSSecureBoot", b(true)),
                ("BIOSSetup", b(true)),
                ("ConfigurationDataReset", b(false)),
                ("ElementName", s("Intel(r) AMT: Boot Capabilities")),
                ("ForceCDorDVDBoot", b(true)),
                ("ForceDiagnosticBoot", b(false)),
                ("ForceHardDriveBoot", b(true)),
                ("ForceHardDriveSafeModeBoot", b(false)),
                ("ForcePXEBoot", b(true)),
                ("ForceUEFIHTTPSBoot", b(true)),
                ("ForceUEFIPBABoot", b(false)),
                ("ForceWinREBoot", b(false)),
                ("ForcedProgressEvents", b(true)),
                ("IDER", b(true)),
                ("InstanceID", s("Intel(r) AMT:BootCapabilities 0")),
                ("KeyboardLock", b(true)),
                ("PlatformErase", s("0")),
                ("PowerButtonLock", b(false)),
                ("ResetButtonLock", b(false)),
                ("SOL", b(true)),
                ("SecureBootControl", b(true)),
                ("SecureErase", b(false)),
                ("SleepButtonLock", b(false)),
                ("UserPasswordBypass", b(true)),
            ],
            "AMT_RedirectionService" => vec![
                ("CreationClassName", s("AMT_RedirectionService")),
                ("ElementName", s("Intel(r) AMT Redirection Service")),
                ("EnabledState", self.redirection_state().to_string()),
                ("ListenerEnabled", b(self.listener_enabled)),
                ("Name", s("Intel(r) AMT Redirection Service")),
                ("SystemCreationClassName", s("CIM_ComputerSystem")),
                ("SystemName", s("Intel(r) AMT")),
            ],
            "IPS_OptInService" => vec![
                ("CanModifyOptInPolicy", s("1")),
                ("CreationClassName", s("IPS_OptInService")),
                ("ElementName", s("Intel(r) AMT OptIn Service")),
                ("Name", s("Intel(r) AMT OptIn Service")),
                ("OptInCodeTimeout", s("120")),
                ("OptInDisplayTimeout", s("300")),
                ("OptInRequired", self.opt_in_required.to_string()),
                ("OptInState", s("0")),
                ("SystemCreationClassName", s("CIM_ComputerSystem")),
                ("SystemName", s("Intel(r) AMT")),
            ],
            "CIM_KVMRedirectionSAP" => vec![
                ("CreationClassName", s("CIM_KVMRedirectionSAP")),
                ("ElementName", s("KVM Redirection Service Access Point")),
                ("EnabledState", self.kvm_state().to_string()),
                ("KVMProtocol", s("4")),
                ("Name", s("KVM Redirection Service Access Point")),
                ("RequestedState", s(if self.kvm { "2" } else { "3" })),
                ("SystemCreationClassName", s("CIM_ComputerSystem")),
                ("SystemName", s("ManagedSystem")),
            ],
            "CIM_BootService" => vec![
                ("CreationClassName", s("CIM_BootService")),
                ("ElementName", s("Intel(r) AMT Boot Service")),
                ("EnabledState", s(if self.ocr { "32769" } else { "32768" })),
                ("Name", s("Intel(r) AMT Boot Service")),
                ("OperationalStatus", s("0")),
                ("RequestedState", s("12")),
                ("SystemCreationClassName", s("CIM_ComputerSystem")),
                ("SystemName", s("Intel(r) AMT")),
            ],
            "IPS_PowerManagementService" => vec![
                ("CreationClassName", s("IPS_PowerManagementService")),
                ("ElementName", s("Intel(r) AMT Power Management Service")),
                ("EnabledState", s("5")),
                ("Name", s("Intel(r) AMT Power Management Service")),
                ("OSPowerSavingState", self.os_power_saving_state.to_string()),
                ("RequestedState", s("12")),
                ("SystemCreationClassName", s("CIM_ComputerSystem")),
                ("SystemName", s("Intel(r) AMT")),
            ],
            "CIM_ComputerSystemPackage" => {
                vec![("PlatformGUID", s("4C4C4544004D4410804C3CC04F345732"))]
            }
            "CIM_Chassis" => vec![
                ("ChassisPackageType", s("0")),
                ("CreationClassName", s("CIM_Chassis")),
                ("ElementName", s("Managed System Chassis")),
                ("Manufacturer", s("Rampart Simulated")),
                ("Model", s("SIM-1")),
                ("OperationalStatus", s("0")),
                ("PackageType", s("3")),
                ("SerialNumber", s("SIM0001")),
                ("Tag", s("CIM_Chassis")),
                ("Version", s("1.0")),
            ],
            "CIM_Card" => Self::card(),
            "CIM_BIOSElement" => vec![
                ("ElementName", s("Primary BIOS")),
                ("Manufacturer", s("Rampart Simulated")),
                ("Name", s("Primary BIOS")),
                ("OperationalStatus", s("0")),
                ("PrimaryBIOS", b(true)),
                ("SoftwareElementID", s("SIM.1.2.3")),
                ("SoftwareElementState", s("2")),
                ("TargetOperatingSystem", s("66")),
                ("Version", s("1.2.3")),
            ],
            _ => return None,
        })
    }

    fn card() -> Vec<(&'static str, String)> {
        vec![
            ("CanBeFRUed", "true".into()),
            ("CreationClassName", "CIM_Card".into()),
            ("ElementName", "Managed System Base Board".into()),
            ("Manufacturer", "Rampart Simulated".into()),
            ("Model", "SIM-BOARD".into()),
            ("OperationalStatus", "0".into()),
            ("PackageType", "9".into()),
            ("SerialNumber", "BOARD0001".into()),
            ("Tag", "CIM_Card".into()),
            ("Version", "A1".into()),
        ]
    }

    fn redirection_state(&self) -> u32 {
        32768 + u32::from(self.ider) + 2 * u32::from(self.sol)
    }

    fn kvm_state(&self) -> u32 {
        match (self.kvm, self.listener_enabled) {
            (true, true) => 2,
            (true, false) => 6,
            _ => 3,
        }
    }

    /// The items an enumeration of `class` returns, or None for a class the device lacks.
    fn items(&self, class: &str) -> Option<Vec<String>> {
        let i = |c: &str, props: &[(&str, String)]| instance("h", c, props);
        let s = |v: &str| v.to_string();
        Some(match class {
            "CIM_SoftwareIdentity" => [
                ("Flash", self.amt_version.clone()),
                ("Netstack", self.amt_version.clone()),
                ("AMTApps", self.amt_version.clone()),
                ("AMT", self.amt_version.clone()),
                ("Sku", s("16392")),
                ("VendorID", s("8086")),
                ("Build Number", s("3425")),
                ("Recovery Version", self.amt_version.clone()),
                ("Recovery Build Num", s("3425")),
                ("Legacy Mode", s("False")),
                ("AMT FW Core Version", self.amt_version.clone()),
            ]
            .iter()
            .map(|(id, v)| {
                i(
                    "CIM_SoftwareIdentity",
                    &[
                        ("InstanceID", s(id)),
                        ("IsEntity", s("true")),
                        ("VersionString", v.clone()),
                    ],
                )
            })
            .collect(),
            "CIM_ServiceAvailableToElement" => vec![format!(
                "<h:CIM_AssociatedPowerManagementService>{}<h:PowerState>{}</h:PowerState>\
                 <h:ServiceProvided><b:Address>{NS_ADDR}/role/anonymous</b:Address>\
                 <b:ReferenceParameters><c:ResourceURI>{CIM}CIM_PowerManagementService\
                 </c:ResourceURI><c:SelectorSet><c:Selector Name=\"CreationClassName\">\
                 CIM_PowerManagementService</c:Selector></c:SelectorSet></b:ReferenceParameters>\
                 </h:ServiceProvided></h:CIM_AssociatedPowerManagementService>",
                [10, 8, 5, 11, 4, 7, 14, 12]
                    .iter()
                    .map(|n| format!(
                        "<h:AvailableRequestedPowerStates>{n}</h:AvailableRequestedPowerStates>"
                    ))
                    .collect::<String>(),
                self.power_state
            )],
            "CIM_BootSourceSetting" => [
                ("Intel(r) AMT: Force Hard-drive Boot", "Hard-drive"),
                ("Intel(r) AMT: Force CD/DVD Boot", "CD/DVD"),
                ("Intel(r) AMT: Force PXE Boot", "PXE"),
                ("Intel(r) AMT: Force OCR UEFI HTTPS Boot 1", "HTTPS"),
            ]
            .iter()
            .map(|(id, bios)| {
                i(
                    "CIM_BootSourceSetting",
                    &[
                        ("BIOSBootString", s(bios)),
                        ("BootString", s(bios)),
                        ("ElementName", s("Intel(r) AMT: Boot Source")),
                        ("FailThroughSupported", s("2")),
                        ("InstanceID", s(id)),
                    ],
                )
            })
            .collect(),
            "CIM_Processor" => vec![i(
                "CIM_Processor",
                &[
                    ("CPUStatus", s("1")),
                    ("CreationClassName", s("CIM_Processor")),
                    ("CurrentClockSpeed", s("2600")),
                    ("DeviceID", s("CPU 0")),
                    ("ElementName", s("Managed System CPU")),
                    ("EnabledState", s("2")),
                    ("ExternalBusClockSpeed", s("100")),
                    ("Family", s("198")),
                    ("HealthState", s("0")),
                    ("MaxClockSpeed", s("8300")),
                    ("OperationalStatus", s("0")),
                    ("Role", s("Central Processor")),
                    ("Stepping", s("3")),
                    ("UpgradeMethod", s("1")),
                ],
            )],
            "CIM_PhysicalMemory" => (0..2)
                .map(|n| {
                    i(
                        "CIM_PhysicalMemory",
                        &[
                            ("BankLabel", format!("BANK {n}")),
                            ("Capacity", s("17179869184")),
                            ("ConfiguredMemoryClockSpeed", s("3200")),
                            ("CreationClassName", s("CIM_PhysicalMemory")),
                            ("ElementName", s("Managed System Memory Chip")),
                            ("FormFactor", s("13")),
                            ("IsSpeedInMhz", s("true")),
                            ("Manufacturer", s("Simulated")),
                            ("MaxMemorySpeed", s("3200")),
                            ("MemoryType", s("26")),
                            ("PartNumber", s("SIM-DIMM-16G")),
                            ("SerialNumber", format!("DIMM{n:04}")),
                            ("Speed", s("0")),
                            ("Tag", format!("9876543210-{n}")),
                        ],
                    )
                })
                .collect(),
            "CIM_MediaAccessDevice" => vec![i(
                "CIM_MediaAccessDevice",
                &[
                    ("Capabilities", s("4")),
                    ("Capabilities", s("10")),
                    ("CreationClassName", s("CIM_MediaAccessDevice")),
                    ("DeviceID", s("MEDIA DEV 0")),
                    ("ElementName", s("Managed System Media Access Device")),
                    ("EnabledDefault", s("2")),
                    ("EnabledState", s("0")),
                    ("MaxMediaSize", s("500107608")),
                    ("OperationalStatus", s("0")),
                    ("RequestedState", s("12")),
                    ("Security", s("2")),
                    ("SystemCreationClassName", s("CIM_ComputerSystem")),
                    ("SystemName", s("ManagedSystem")),
                ],
            )],
            "CIM_PhysicalPackage" => vec![i("CIM_Card", &Self::card())],
            "CIM_SystemPackaging" => vec![i(
                "CIM_ComputerSystemPackage",
                &[("PlatformGUID", s("4C4C4544004D4410804C3CC04F345732"))],
            )],
            "CIM_Chip" => vec![i(
                "CIM_Chip",
                &[
                    ("CanBeFRUed", s("true")),
                    ("CreationClassName", s("CIM_Chip")),
                    ("ElementName", s("Managed System Processor Chip")),
                    ("Manufacturer", s("Intel(R) Corporation")),
                    ("OperationalStatus", s("0")),
                    ("Tag", s("CPU 0")),
                    ("Version", s("Simulated CPU")),
                ],
            )],
            _ => return None,
        })
    }

    fn new_context(&mut self, items: Vec<String>) -> String {
        self.next_id += 1;
        let ctx = format!("{:08X}-0000-0000-0000-000000000000", self.next_id);
        if self.contexts.len() >= MAX_CONTEXTS {
            self.contexts.pop_front();
        }
        self.contexts.push_back((ctx.clone(), items));
        ctx
    }

    /// A power state change: the new state, or None for a transition AMT refuses.
    fn transition(&self, to: u16) -> Option<u16> {
        match (self.power_state, to) {
            (2, 4 | 7 | 8) => Some(to),
            (2, 12) => Some(8),
            (2, 5 | 10 | 11 | 14) => Some(2),
            (4 | 7 | 8, 2) => Some(2),
            _ => None,
        }
    }

    /// Answers one authorised request body.
    pub(crate) fn answer(&mut self, body: &[u8]) -> Answer {
        let xml = String::from_utf8_lossy(body).into_owned();
        let req = Req {
            action: tag(&xml, "Action").unwrap_or_default(),
            resource: tag(&xml, "ResourceURI").unwrap_or_default(),
            message_id: tag(&xml, "MessageID").unwrap_or_default(),
            xml,
        };
        let class = req
            .resource
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let known = [AMT, CIM, IPS].iter().any(|b| req.resource.starts_with(b));
        if !known {
            return self.unreachable(&req);
        }
        let method = req
            .action
            .strip_prefix(&req.resource)
            .and_then(|m| m.strip_prefix('/'))
            .map(str::to_string);
        match (req.action.as_str(), method.as_deref(), class.as_str()) {
            (a, _, c) if a == format!("{NS_TRANSFER}/Get") => match self.instance_props(c) {
                Some(p) => self.get_response(&req, c, &p),
                None => self.unreachable(&req),
            },
            (a, _, c) if a == format!("{NS_TRANSFER}/Put") => self.put(&req, c),
            (a, _, c) if a == format!("{NS_ENUM}/Enumerate") => match self.items(c) {
                Some(items) => {
                    // Long lists come back over two Pulls, as AMT pages them.
                    let ctx = self.new_context(items);
                    let body = format!(
                        "<g:EnumerateResponse><g:EnumerationContext>{ctx}</g:EnumerationContext>\
                         </g:EnumerateResponse>"
                    );
                    (
                        200,
                        self.envelope(
                            &req,
                            &format!("{NS_ENUM}/EnumerateResponse"),
                            NS_ENUM,
                            "urn:none",
                            &body,
                        ),
                    )
                }
                None => self.unreachable(&req),
            },
            (a, _, c) if a == format!("{NS_ENUM}/Pull") => self.pull(&req, c),
            (_, Some("RequestPowerStateChange"), "CIM_PowerManagementService") => {
                let to: u16 = tag(&req.xml, "PowerState")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let rv = match self.transition(to) {
                    Some(s) => {
                        self.power_state = s;
                        let ev = match to {
                            2 => 0,
                            8 | 12 => 1,
                            5 => 2,
                            _ => 3,
                        };
                        self.audit_log.push(audit(
                            17,
                            ev,
                            &digest_initiator("admin"),
                            1_700_001_000,
                            "",
                            &[],
                        ));
                        0
                    }
                    None => 2,
                };
                self.power_requests.push((to, rv));
                self.rv(
                    &req,
                    "CIM_PowerManagementService",
                    "RequestPowerStateChange",
                    rv,
                )
            }
            (_, Some("RequestOSPowerSavingStateChange"), "IPS_PowerManagementService") => {
                let to: u16 = tag(&req.xml, "OSPowerSavingState")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let rv = if (2..=3).contains(&to) && self.power_state == 2 {
                    self.os_power_saving_state = to;
                    0
                } else {
                    5
                };
                self.rv(
                    &req,
                    "IPS_PowerManagementService",
                    "RequestOSPowerSavingStateChange",
                    rv,
                )
            }
            (
                _,
                Some("RequestStateChange"),
                c @ ("AMT_RedirectionService" | "CIM_KVMRedirectionSAP" | "CIM_BootService"),
            ) => {
                let to: u32 = tag(&req.xml, "RequestedState")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let rv = match (c, to) {
                    ("AMT_RedirectionService", 32768..=32771) => {
                        self.ider = to & 1 != 0;
                        self.sol = to & 2 != 0;
                        0
                    }
                    ("CIM_KVMRedirectionSAP", 2 | 3) => {
                        self.kvm = to == 2;
                        0
                    }
                    ("CIM_BootService", 32768 | 32769) => {
                        self.ocr = to == 32769;
                        0
                    }
                    _ => 5,
                };
                self.rv(&req, c, "RequestStateChange", rv)
            }
            (_, Some("SetBootConfigRole"), "CIM_BootService") => {
                self.rv(&req, "CIM_BootService", "SetBootConfigRole", 0)
            }
            (_, Some("ChangeBootOrder"), "CIM_BootConfigSetting") => {
                let src = tag(&req.xml, "Source").and(
                    req.xml
                        .split("<Selector Name=\"InstanceID\">")
                        .nth(1)
                        .and_then(|r| r.split('<').next())
                        .map(unescape),
                );
                let ok = src
                    .as_deref()
                    .is_none_or(|s| s.starts_with("Intel(r) AMT: Force"));
                if ok {
                    self.boot_source = src;
                }
                self.rv(
                    &req,
                    "CIM_BootConfigSetting",
                    "ChangeBootOrder",
                    if ok { 0 } else { 1 },
                )
            }
            (_, Some("ReadRecords"), "AMT_AuditLog") => {
                let start: usize = tag(&req.xml, "StartIndex")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                let total = self.audit_log.len();
                let page: Vec<String> = self
                    .audit_log
                    .iter()
                    .skip(start.saturating_sub(1))
                    .take(10)
                    .map(|r| base64(r))
                    .collect();
                let mut f = format!(
                    "<g:TotalRecordCount>{total}</g:TotalRecordCount>\
                     <g:RecordsReturned>{}</g:RecordsReturned>",
                    page.len()
                );
                for p in page {
                    let _ = write!(f, "<g:EventRecords>{p}</g:EventRecords>");
                }
                f.push_str("<g:ReturnValue>0</g:ReturnValue>");
                self.output(&req, "AMT_AuditLog", "ReadRecords", &f)
            }
            (_, Some("PositionToFirstRecord"), "AMT_MessageLog") => self.output(
                &req,
                "AMT_MessageLog",
                "PositionToFirstRecord",
                "<g:IterationIdentifier>1</g:IterationIdentifier><g:ReturnValue>0</g:ReturnValue>",
            ),
            (_, Some("GetRecords"), "AMT_MessageLog") => {
                let from: usize = tag(&req.xml, "IterationIdentifier")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                let max: usize = tag(&req.xml, "MaxReadRecords")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(390);
                let recs: Vec<String> = self
                    .event_log
                    .iter()
                    .skip(from.saturating_sub(1))
                    .take(max)
                    .map(|r| base64(r))
                    .collect();
                let next = from + recs.len();
                let mut f = format!(
                    "<g:IterationIdentifier>{next}</g:IterationIdentifier>\
                     <g:NoMoreRecords>{}</g:NoMoreRecords>",
                    next > self.event_log.len()
                );
                for r in recs {
                    let _ = write!(f, "<g:RecordArray>{r}</g:RecordArray>");
                }
                f.push_str("<g:ReturnValue>0</g:ReturnValue>");
                self.output(&req, "AMT_MessageLog", "GetRecords", &f)
            }
            _ => self.fault(
                &req,
                "b:ActionNotSupported",
                "The action is not supported by the service.",
            ),
        }
    }

    fn pull(&mut self, req: &Req, class: &str) -> Answer {
        let ctx = tag(&req.xml, "EnumerationContext").unwrap_or_default();
        let Some(pos) = self.contexts.iter().position(|(c, _)| *c == ctx) else {
            return self.fault(
                req,
                "c:InvalidEnumerationContext",
                "The supplied enumeration context is invalid.",
            );
        };
        let Some((_, mut items)) = self.contexts.remove(pos) else {
            return self.unreachable(req);
        };
        // More than 8 items: half now, the rest on the next Pull.
        let rest = if items.len() > 8 {
            items.split_off(items.len() / 2)
        } else {
            Vec::new()
        };
        let mut body = format!("<g:PullResponse><g:Items>{}</g:Items>", items.concat());
        if rest.is_empty() {
            body.push_str("<g:EndOfSequence></g:EndOfSequence>");
        } else {
            let next = self.new_context(rest);
            let _ = write!(body, "<g:EnumerationContext>{next}</g:EnumerationContext>");
        }
        body.push_str("</g:PullResponse>");
        let item_ns = class_ns(class);
        (
            200,
            self.envelope(
                req,
                &format!("{NS_ENUM}/PullResponse"),
                NS_ENUM,
                &item_ns,
                &body,
            ),
        )
    }

    fn put(&mut self, req: &Req, class: &str) -> Answer {
        let props = children(&req.xml, class);
        let get = |k: &str| props.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        match class {
            "AMT_BootSettingData" => {
                const READ_ONLY: [&str; 4] = [
                    "BIOSLastStatus",
                    "OptionsCleared",
                    "UEFIHTTPSBootEnabled",
                    "WinREBootEnabled",
                ];
                if props.iter().any(|(k, _)| READ_ONLY.contains(&k.as_str())) {
                    return self.fault(
                        req,
                        "e:InvalidRepresentation",
                        "The XML content is invalid or includes read-only properties.",
                    );
                }
                for (k, v) in &props {
                    self.boot_settings.insert(k.clone(), v.clone());
                }
            }
            "AMT_RedirectionService" => {
                if let Some(l) = get("ListenerEnabled") {
                    self.listener_enabled = l == "true";
                }
                if let Some(s) = get("EnabledState").and_then(|v| v.parse::<u32>().ok()) {
                    self.ider = s & 1 != 0;
                    self.sol = s & 2 != 0;
                }
            }
            "IPS_OptInService" => match get("OptInRequired").and_then(|v| v.parse::<u32>().ok()) {
                Some(v @ (0 | 1 | u32::MAX)) => self.opt_in_required = v,
                _ => {
                    return self.fault(
                        req,
                        "e:InvalidRepresentation",
                        "OptInRequired must be 0, 1 or 4294967295.",
                    );
                }
            },
            _ => return self.unreachable(req),
        }
        let p = self.instance_props(class).unwrap_or_default();
        let (_, xml) = self.get_response(req, class, &p);
        (
            200,
            xml.replace("transfer/GetResponse", "transfer/PutResponse"),
        )
    }
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].iter().enumerate() {
            if i <= c.len() {
                out.push(char::from(T[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_tags() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(
            tag(
                "<a:Action>x&amp;y</a:Action><w:ResourceURI>r</w:ResourceURI>",
                "Action"
            )
            .as_deref(),
            Some("x&y")
        );
        assert_eq!(tag("<h:RequestedState>5</h:RequestedState>", "State"), None);
        assert_eq!(
            children("<h:C xmlns:h=\"u\"><h:A>1</h:A><h:B></h:B></h:C>", "C"),
            [
                ("A".to_string(), "1".to_string()),
                ("B".to_string(), String::new())
            ]
        );
    }

    #[test]
    fn unknown_resources_fault() {
        let mut s = AmtState::default();
        let (status, xml) = s.answer(
            b"<a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</a:Action>\
              <w:ResourceURI>http://example.com/Nope</w:ResourceURI><a:MessageID>7</a:MessageID>",
        );
        assert_eq!(status, 400);
        assert!(xml.contains("DestinationUnreachable") && xml.contains("<b:RelatesTo>7<"));
    }
}
