//! The CIM/AMT instance properties each route reports, by class, and their JSON typing.
//!
//! Only the listed properties are read (no generic XML mapping). Values are typed as MPS's
//! parser types them (xml2js with `parseNumbers`/`parseBooleans`): `true`/`false` become
//! booleans, plain decimal integers numbers (not with a leading zero, so IDs such as `0123`
//! stay strings), anything else a string; a repeated property becomes an array.

use serde_json::{Map, Number, Value};

use super::xml::Element;

/// Longest property value kept (longer ones are cut: device strings are short).
pub(crate) const MAX_VALUE: usize = 4096;

/// The properties kept for instances of `class`.
pub(crate) fn of(class: &str) -> &'static [&'static str] {
    match class {
        "CIM_SoftwareIdentity" => &["InstanceID", "IsEntity", "VersionString"],
        "AMT_SetupAndConfigurationService" => &[
            "ConfigurationServerFQDN",
            "CreationClassName",
            "ElementName",
            "EnabledState",
            "Name",
            "PasswordModel",
            "ProvisioningMode",
            "ProvisioningServerOID",
            "ProvisioningState",
            "RequestedState",
            "SystemCreationClassName",
            "SystemName",
            "ZeroTouchConfigurationEnabled",
        ],
        "AMT_GeneralSettings" => &[
            "AMTNetworkEnabled",
            "DDNSPeriodicUpdateInterval",
            "DDNSTTL",
            "DDNSUpdateByDHCPServerEnabled",
            "DDNSUpdateEnabled",
            "DHCPSyncRequiresHostname",
            "DHCPv6ConfigurationTimeout",
            "DigestRealm",
            "DomainName",
            "ElementName",
            "HostName",
            "HostOSFQDN",
            "IdleWakeTimeout",
            "InstanceID",
            "NetworkInterfaceEnabled",
            "PingResponseEnabled",
            "PowerSource",
            "PreferredAddressFamily",
            "PresenceNotificationInterval",
            "PrivacyLevel",
            "RmcpPingResponseEnabled",
            "SharedFQDN",
            "ThunderboltDockEnabled",
            "WsmanOnlyMode",
        ],
        "CIM_ComputerSystemPackage" => &["PlatformGUID"],
        "CIM_Chassis" | "CIM_Card" | "CIM_PhysicalPackage" => &[
            "CanBeFRUed",
            "ChassisPackageType",
            "CreationClassName",
            "ElementName",
            "Manufacturer",
            "Model",
            "OperationalStatus",
            "PackageType",
            "SerialNumber",
            "Tag",
            "Version",
        ],
        "CIM_BIOSElement" => &[
            "ElementName",
            "Manufacturer",
            "Name",
            "OperationalStatus",
            "PrimaryBIOS",
            "ReleaseDate",
            "SoftwareElementID",
            "SoftwareElementState",
            "TargetOperatingSystem",
            "Version",
        ],
        "CIM_Processor" => &[
            "CPUStatus",
            "CreationClassName",
            "CurrentClockSpeed",
            "DeviceID",
            "ElementName",
            "EnabledState",
            "ExternalBusClockSpeed",
            "Family",
            "HealthState",
            "MaxClockSpeed",
            "OperationalStatus",
            "OtherFamilyDescription",
            "RequestedState",
            "Role",
            "Stepping",
            "SystemCreationClassName",
            "SystemName",
            "UpgradeMethod",
        ],
        "CIM_PhysicalMemory" => &[
            "BankLabel",
            "Capacity",
            "ConfiguredMemoryClockSpeed",
            "CreationClassName",
            "ElementName",
            "FormFactor",
            "IsSpeedInMhz",
            "Manufacturer",
            "MaxMemorySpeed",
            "MemoryType",
            "PartNumber",
            "SerialNumber",
            "Speed",
            "Tag",
        ],
        "CIM_MediaAccessDevice" => &[
            "Capabilities",
            "CreationClassName",
            "DeviceID",
            "ElementName",
            "EnabledDefault",
            "EnabledState",
            "MaxMediaSize",
            "OperationalStatus",
            "RequestedState",
            "Security",
            "SystemCreationClassName",
            "SystemName",
        ],
        "CIM_Chip" => &[
            "CanBeFRUed",
            "CreationClassName",
            "ElementName",
            "Manufacturer",
            "OperationalStatus",
            "Tag",
            "Version",
        ],
        "AMT_BootCapabilities" => &[
            "BIOSPause",
            "BIOSReflash",
            "BIOSSecureBoot",
            "BIOSSetup",
            "ConfigurationDataReset",
            "ElementName",
            "ForceCDorDVDBoot",
            "ForceDiagnosticBoot",
            "ForceHardDriveBoot",
            "ForceHardDriveSafeModeBoot",
            "ForcePXEBoot",
            "ForceUEFIHTTPSBoot",
            "ForceUEFIPBABoot",
            "ForceWinREBoot",
            "ForcedProgressEvents",
            "IDER",
            "InstanceID",
            "KeyboardLock",
            "PlatformErase",
            "PowerButtonLock",
            "ResetButtonLock",
            "SOL",
            "SecureBootControl",
            "SecureErase",
            "SleepButtonLock",
            "UserPasswordBypass",
            "VerbosityQuiet",
            "VerbosityScreenBlank",
            "VerbosityVerbose",
        ],
        "AMT_BootSettingData" => &[
            "BIOSLastStatus",
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
            "OptionsCleared",
            "OwningEntity",
            "PlatformErase",
            "RPEEnabled",
            "RSEPassword",
            "ReflashBIOS",
            "SecureErase",
            "UEFIHTTPSBootEnabled",
            "UEFILocalPBABootEnabled",
            "UseIDER",
            "UseSOL",
            "UseSafeMode",
            "UserPasswordBypass",
            "WinREBootEnabled",
        ],
        "AMT_RedirectionService" => &[
            "AccessLog",
            "CreationClassName",
            "ElementName",
            "EnabledState",
            "ListenerEnabled",
            "Name",
            "SystemCreationClassName",
            "SystemName",
        ],
        "IPS_OptInService" => &[
            "CanModifyOptInPolicy",
            "CreationClassName",
            "ElementName",
            "Name",
            "OptInCodeTimeout",
            "OptInDisplayTimeout",
            "OptInRequired",
            "OptInState",
            "SystemCreationClassName",
            "SystemName",
        ],
        "CIM_KVMRedirectionSAP" => &[
            "CreationClassName",
            "ElementName",
            "EnabledState",
            "KVMProtocol",
            "Name",
            "RequestedState",
            "SystemCreationClassName",
            "SystemName",
        ],
        "CIM_BootService" => &[
            "CreationClassName",
            "ElementName",
            "EnabledState",
            "Name",
            "OperationalStatus",
            "RequestedState",
            "SystemCreationClassName",
            "SystemName",
        ],
        "CIM_BootSourceSetting" => &[
            "BIOSBootString",
            "BootString",
            "ElementName",
            "FailThroughSupported",
            "InstanceID",
            "StructuredBootString",
        ],
        "IPS_PowerManagementService" => &[
            "CreationClassName",
            "ElementName",
            "EnabledState",
            "Name",
            "OSPowerSavingState",
            "RequestedState",
            "SystemCreationClassName",
            "SystemName",
        ],
        "CIM_AssociatedPowerManagementService" => &["AvailableRequestedPowerStates", "PowerState"],
        _ => &[],
    }
}

fn cut(s: &str) -> &str {
    if s.len() <= MAX_VALUE {
        return s;
    }
    let mut end = MAX_VALUE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Types a property's text as MPS does.
pub(crate) fn typed(text: &str) -> Value {
    let t = cut(text.trim());
    match t {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    let digits = t.strip_prefix('-').unwrap_or(t);
    let plain = !digits.is_empty()
        && digits.len() <= 18
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if plain && let Ok(n) = t.parse::<i64>() {
        return Value::Number(Number::from(n));
    }
    Value::String(t.to_string())
}

/// A property element's value: its typed text, or for a structured value (`<ReleaseDate>
/// <Datetime>..</Datetime></ReleaseDate>`) an object of its children's typed texts.
fn value(el: &Element) -> Value {
    if el.children.is_empty() {
        return typed(&el.text);
    }
    let mut m = Map::new();
    for c in el.children.iter().take(16) {
        m.entry(c.name.clone()).or_insert_with(|| typed(&c.text));
    }
    Value::Object(m)
}

/// The listed properties of an instance element (named by its class).
pub(crate) fn instance(el: &Element) -> Map<String, Value> {
    let wanted = of(&el.name);
    let mut m = Map::new();
    for c in &el.children {
        if !wanted.contains(&c.name.as_str()) {
            continue;
        }
        let v = value(c);
        match m.get_mut(&c.name) {
            None => {
                m.insert(c.name.clone(), v);
            }
            Some(Value::Array(a)) => a.push(v),
            Some(old) => {
                let first = old.take();
                *old = Value::Array(vec![first, v]);
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_follows_mps() {
        assert_eq!(typed(" true "), Value::Bool(true));
        assert_eq!(typed("32771"), Value::from(32771));
        assert_eq!(typed("-5"), Value::from(-5));
        assert_eq!(typed("0"), Value::from(0));
        assert_eq!(typed("0123"), Value::from("0123"));
        assert_eq!(typed("12.0.67"), Value::from("12.0.67"));
        assert_eq!(typed("4294967295"), Value::from(4_294_967_295u32));
        assert_eq!(
            typed("99999999999999999999"),
            Value::from("99999999999999999999")
        );
        assert_eq!(typed(""), Value::from(""));
        assert_eq!(
            typed(&"é".repeat(MAX_VALUE)).as_str().unwrap().len(),
            MAX_VALUE
        );
    }
}
