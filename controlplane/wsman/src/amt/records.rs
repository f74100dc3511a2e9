//! AMT's binary log records, decoded into the JSON that MPS serves.
//!
//! - Security audit log (`AMT_AuditLog.ReadRecords`, AMT SDK "Security Administration: Audit
//!   Log"): each `EventRecords` is base64 of `AuditAppID:u16be EventID:u16be InitiatorType:u8
//!   initiator... TimeStamp:u32be MCLocationType:u8 NetAddrLen:u8 NetAddr ExLen:u8 ExData`.
//! - Event log (`AMT_MessageLog.GetRecords`, IPMI PET-style): each `RecordArray` is base64 of 21
//!   bytes, `TimeStamp:u32le DeviceAddress SensorType EventType EventOffset SourceType Severity
//!   SensorNumber Entity EntityInstance EventData[8]`.
//!
//! Times are emitted as RFC 3339 UTC of the device's seconds (MPS shifts them by the server's
//! time zone instead, which makes its output depend on where it runs).

use base64::Engine as _;
use serde_json::{Map, Value, json};

/// Most records decoded from one answer.
pub(crate) const MAX_RECORDS: usize = 1024;

/// A bounds-checked reader over one record (house style rule 9).
struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn u8(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.at)?;
        self.at += 1;
        Some(b)
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.buf.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
    /// Up to `n` bytes (fewer at the end), as MPS's `substring` reads them.
    fn take_lenient(&mut self, n: usize) -> &'a [u8] {
        let end = self.at.saturating_add(n).min(self.buf.len());
        let s = self.buf.get(self.at..end).unwrap_or(&[]);
        self.at = end;
        s
    }
    fn u16be(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32be(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Bytes as a JavaScript "binary string" (one char per byte), as MPS returns `Ex`.
fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

/// RFC 3339 UTC of Unix seconds (days-from-civil inverse, Hinnant's algorithm).
pub(crate) fn rfc3339(secs: u32) -> String {
    let secs = i64::from(secs);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub(crate) fn b64(s: &str) -> Option<Vec<u8>> {
    let clean: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(clean).ok()
}

// === Audit log ===

/// AMT SDK audit application and event names, keyed `app` or `app * 100 + event`.
fn audit_name(key: u32) -> Option<&'static str> {
    AUDIT_NAMES.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

const AUDIT_NAMES: &[(u32, &str)] = &[
    (16, "Security Admin"),
    (17, "RCO"),
    (18, "Redirection Manager"),
    (19, "Firmware Update Manager"),
    (20, "Security Audit Log"),
    (21, "Network Time"),
    (22, "Network Administration"),
    (23, "Storage Administration"),
    (24, "Event Manager"),
    (25, "Circuit Breaker Manager"),
    (26, "Agent Presence Manager"),
    (27, "Wireless Configuration"),
    (28, "EAC"),
    (29, "KVM"),
    (30, "User Opt-In Events"),
    (32, "Screen Blanking"),
    (33, "Watchdog Events"),
    (1600, "Provisioning Started"),
    (1601, "Provisioning Completed"),
    (1602, "ACL Entry Added"),
    (1603, "ACL Entry Modified"),
    (1604, "ACL Entry Removed"),
    (1605, "ACL Access with Invalid Credentials"),
    (1606, "ACL Entry State"),
    (1607, "TLS State Changed"),
    (1608, "TLS Server Certificate Set"),
    (1609, "TLS Server Certificate Remove"),
    (1610, "TLS Trusted Root Certificate Added"),
    (1611, "TLS Trusted Root Certificate Removed"),
    (1612, "TLS Preshared Key Set"),
    (1613, "Kerberos Settings Modified"),
    (1614, "Kerberos Master Key Modified"),
    (1615, "Flash Wear out Counters Reset"),
    (1616, "Power Package Modified"),
    (1617, "Set Realm Authentication Mode"),
    (1618, "Upgrade Client to Admin Control Mode"),
    (1619, "Unprovisioning Started"),
    (1700, "Performed Power Up"),
    (1701, "Performed Power Down"),
    (1702, "Performed Power Cycle"),
    (1703, "Performed Reset"),
    (1704, "Set Boot Options"),
    (1705, "Remote graceful power down initiated"),
    (1706, "Remote graceful reset initiated"),
    (1707, "Remote Standby initiated"),
    (1708, "Remote Hiberate initiated"),
    (1709, "Remote NMI initiated"),
    (1800, "IDER Session Opened"),
    (1801, "IDER Session Closed"),
    (1802, "IDER Enabled"),
    (1803, "IDER Disabled"),
    (1804, "SoL Session Opened"),
    (1805, "SoL Session Closed"),
    (1806, "SoL Enabled"),
    (1807, "SoL Disabled"),
    (1808, "KVM Session Started"),
    (1809, "KVM Session Ended"),
    (1810, "KVM Enabled"),
    (1811, "KVM Disabled"),
    (1812, "VNC Password Failed 3 Times"),
    (1900, "Firmware Updated"),
    (1901, "Firmware Update Failed"),
    (2000, "Security Audit Log Cleared"),
    (2001, "Security Audit Policy Modified"),
    (2002, "Security Audit Log Disabled"),
    (2003, "Security Audit Log Enabled"),
    (2004, "Security Audit Log Exported"),
    (2005, "Security Audit Log Recovered"),
    (2100, "Intel(R) ME Time Set"),
    (2200, "TCPIP Parameters Set"),
    (2201, "Host Name Set"),
    (2202, "Domain Name Set"),
    (2203, "VLAN Parameters Set"),
    (2204, "Link Policy Set"),
    (2205, "IPv6 Parameters Set"),
    (2300, "Global Storage Attributes Set"),
    (2301, "Storage EACL Modified"),
    (2302, "Storage FPACL Modified"),
    (2303, "Storage Write Operation"),
    (2400, "Alert Subscribed"),
    (2401, "Alert Unsubscribed"),
    (2402, "Event Log Cleared"),
    (2403, "Event Log Frozen"),
    (2500, "CB Filter Added"),
    (2501, "CB Filter Removed"),
    (2502, "CB Policy Added"),
    (2503, "CB Policy Removed"),
    (2504, "CB Default Policy Set"),
    (2505, "CB Heuristics Option Set"),
    (2506, "CB Heuristics State Cleared"),
    (2600, "Agent Watchdog Added"),
    (2601, "Agent Watchdog Removed"),
    (2602, "Agent Watchdog Action Set"),
    (2700, "Wireless Profile Added"),
    (2701, "Wireless Profile Removed"),
    (2702, "Wireless Profile Updated"),
    (2703, "An existing profile sync was modified"),
    (2704, "An existing profile link preference was changed"),
    (
        2705,
        "Wireless profile share with UEFI enabled setting was changed",
    ),
    (2800, "EAC Posture Signer SET"),
    (2801, "EAC Enabled"),
    (2802, "EAC Disabled"),
    (2803, "EAC Posture State"),
    (2804, "EAC Set Options"),
    (2900, "KVM Opt-in Enabled"),
    (2901, "KVM Opt-in Disabled"),
    (2902, "KVM Password Changed"),
    (2903, "KVM Consent Succeeded"),
    (2904, "KVM Consent Failed"),
    (3000, "Opt-In Policy Change"),
    (3001, "Send Consent Code Event"),
    (3002, "Start Opt-In Blocked Event"),
    (3301, "A user has modified the Watchdog Action settings"),
    (
        3302,
        "A user has modified a Watchdog to add, remove, or alter the Watchdog Action connected to it",
    ),
];

/// AMT realm names by realm number (AMT SDK `AMT_RealmNames`).
const REALMS: &[&str] = &[
    "",
    "",
    "Redirection",
    "PT Administration",
    "Hardware Asset",
    "Remote Control",
    "Storage",
    "Event Manager",
    "Storage Admin",
    "Agent Presence Local",
    "Agent Presence Remote",
    "Circuit Breaker",
    "Network Time",
    "General Information",
    "Firmware Update",
    "EIT",
    "LocalUN",
    "Endpoint Access Control",
    "Endpoint Access Control Admin",
    "Event Log Reader",
    "Audit Log",
    "ACL Realm",
    "",
    "",
    "Local System",
];

fn pick(list: &[&'static str], i: u8) -> Option<&'static str> {
    list.get(usize::from(i)).copied()
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// A Windows SID (`S-1-5-21-...`) from its binary form.
fn sid_string(b: &[u8]) -> String {
    let (Some(&rev), Some(&count), Some(auth)) = (b.first(), b.get(1), b.get(2..8)) else {
        return String::new();
    };
    let auth = auth.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x));
    let mut s = format!("S-{rev}-{auth}");
    for i in 0..usize::from(count) {
        let at = 8 + 4 * i;
        let Some(sub) = b.get(at..at + 4) else { break };
        s.push_str(&format!(
            "-{}",
            u32::from_le_bytes([sub[0], sub[1], sub[2], sub[3]])
        ));
    }
    s
}

/// Human-readable extended data for the events that carry some (AMT SDK audit event tables).
fn extended(key: u32, ex: &[u8]) -> Option<String> {
    const AUTH: [&str; 3] = ["NoAuth", "ServerAuth", "MutualAuth"];
    const OPT_IN: [&str; 3] = ["None", "KVM", "All"];
    let at = |i: usize| ex.get(i).copied();
    match key {
        1602 | 1604 if at(0)? == 0 => {
            let n = usize::from(at(1)?);
            Some(latin1(ex.get(2..(2 + n).min(ex.len()))?))
        }
        1603 if at(1)? == 0 => Some(latin1(ex.get(3..).unwrap_or(&[]))),
        1605 => pick(&["Invalid ME access", "Invalid MEBx access"], at(0)?).map(str::to_string),
        1606 => {
            let mut r = pick(&["Disabled", "Enabled"], at(0)?)?.to_string();
            if at(1) == Some(0) {
                r.push_str(", ");
                r.push_str(&latin1(ex.get(3..).unwrap_or(&[])));
            }
            Some(r)
        }
        1607 => Some(format!(
            "Remote {}, Local {}",
            pick(&AUTH, at(0)?)?,
            pick(&AUTH, at(1)?)?
        )),
        1617 => {
            let realm = usize::try_from(be32(ex, 0)?).ok()?;
            Some(format!(
                "{}, {}",
                REALMS.get(realm)?,
                pick(&["NoAuth", "Auth", "Disabled"], at(4)?)?
            ))
        }
        1619 => pick(
            &["BIOS", "MEBx", "Local MEI", "Local WSMAN", "Remote WSMAN"],
            at(0)?,
        )
        .map(str::to_string),
        1900 => {
            let v: Option<Vec<u16>> = (0..8).map(|i| be16(ex, 2 * i)).collect();
            let v = v?;
            Some(format!(
                "From {}.{}.{}.{} to {}.{}.{}.{}",
                v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
            ))
        }
        2100 => Some(rfc3339(be32(ex, 0)?)),
        3000 => Some(format!(
            "From {} to {}",
            pick(&OPT_IN, at(0)?)?,
            pick(&OPT_IN, at(1)?)?
        )),
        3001 => pick(&["Success", "Failed 3 times"], at(0)?).map(str::to_string),
        _ => None,
    }
}

/// One audit record, as MPS's `convertToAuditLogResult` shapes it.
pub(crate) fn audit_record(raw: &[u8]) -> Option<Value> {
    let mut c = Cursor { buf: raw, at: 0 };
    let app = c.u16be()?;
    let event = c.u16be()?;
    let initiator_type = c.u8()?;
    let initiator = match initiator_type {
        // HTTP digest: user name.
        0 => {
            let n = usize::from(c.u8()?);
            latin1(c.take_lenient(n))
        }
        // Kerberos: 4 bytes of domain info, then the SID.
        1 => {
            c.take(3)?;
            let n = usize::from(c.u8()?);
            sid_string(c.take_lenient(n))
        }
        2 => "Local".to_string(),
        3 => "KVM Default Port".to_string(),
        _ => String::new(),
    };
    if initiator_type > 3 {
        // MPS restarts at 0 for an unknown initiator; nothing after it is meaningful.
        c.at = 0;
    }
    let time = c.u32be()?;
    let location = c.u8()?;
    let netlen = usize::from(c.u8()?);
    let net =
        latin1(c.take_lenient(netlen)).replace("0000:0000:0000:0000:0000:0000:0000:0001", "::1");
    let exlen = usize::from(c.u8().unwrap_or(0));
    let ex = c.take_lenient(exlen);
    let key = u32::from(app) * 100 + u32::from(event);
    Some(json!({
        "AuditAppID": app,
        "EventID": event,
        "InitiatorType": initiator_type,
        "AuditApp": audit_name(u32::from(app)),
        "Event": audit_name(key).map_or_else(|| format!("#{event}"), str::to_string),
        "Initiator": initiator,
        "Time": rfc3339(time),
        "MCLocationType": location,
        "NetAddress": net,
        "Ex": latin1(ex),
        "ExStr": extended(key, ex),
    }))
}

// === Event log ===

const ENTITIES: &[&str] = &[
    "Unspecified",
    "Other",
    "Unknown",
    "Processor",
    "Disk",
    "Peripheral",
    "System management module",
    "System board",
    "Memory module",
    "Processor module",
    "Power supply",
    "Add in card",
    "Front panel board",
    "Back panel board",
    "Power system board",
    "Drive backplane",
    "System internal expansion board",
    "Other system board",
    "Processor board",
    "Power unit",
    "Power module",
    "Power management board",
    "Chassis back panel board",
    "System chassis",
    "Sub chassis",
    "Other chassis board",
    "Disk drive bay",
    "Peripheral bay",
    "Device bay",
    "Fan cooling",
    "Cooling unit",
    "Cable interconnect",
    "Memory device",
    "System management software",
    "BIOS",
    "Intel(r) ME",
    "System bus",
    "Group",
    "Intel(r) ME",
    "External environment",
    "Battery",
    "Processing blade",
    "Connectivity switch",
    "Processor/memory module",
    "I/O module",
    "Processor I/O module",
    "Management controller firmware",
    "IPMI channel",
    "PCI bus",
    "PCI express bus",
    "SCSI bus",
    "SATA/SAS bus",
    "Processor front side bus",
];

/// IPMI system firmware error codes (sensor type 0Fh, offset 00h).
const FIRMWARE_ERRORS: &[&str] = &[
    "Unspecified.",
    "No system memory is physically installed in the system.",
    "No usable system memory, all installed memory has experienced an unrecoverable failure.",
    "Unrecoverable hard-disk/ATAPI/IDE device failure.",
    "Unrecoverable system-board failure.",
    "Unrecoverable diskette subsystem failure.",
    "Unrecoverable hard-disk controller failure.",
    "Unrecoverable PS/2 or USB keyboard failure.",
    "Removable boot media not found.",
    "Unrecoverable video controller failure.",
    "No video device detected.",
    "Firmware (BIOS) ROM corruption detected.",
    "CPU voltage mismatch (processors that share same supply have mismatched voltage requirements)",
    "CPU speed matching failure",
];

/// IPMI system firmware progress codes (sensor type 0Fh, offsets 01h/02h).
const FIRMWARE_PROGRESS: &[&str] = &[
    "Unspecified.",
    "Memory initialization.",
    "Starting hard-disk initialization and test",
    "Secondary processor(s) initialization",
    "User authentication",
    "User-initiated system setup",
    "USB resource configuration",
    "PCI resource configuration",
    "Option ROM initialization",
    "Video initialization",
    "Cache initialization",
    "SM Bus initialization",
    "Keyboard controller initialization",
    "Embedded controller/management controller initialization",
    "Docking station attachment",
    "Enabling docking station",
    "Docking station ejection",
    "Disabling docking station",
    "Calling operating system wake-up vector",
    "Starting operating system boot process",
    "Baseboard or motherboard initialization",
    "reserved",
    "Floppy initialization",
    "Keyboard test",
    "Pointing device test",
    "Primary processor initialization",
];

fn watchdog_state(s: u8) -> Option<&'static str> {
    match s {
        1 => Some("Not Started"),
        2 => Some("Stopped"),
        4 => Some("Running"),
        8 => Some("Expired"),
        16 => Some("Suspended"),
        _ => None,
    }
}

fn event_desc(sensor: u8, offset: u8, d: &[u8; 8]) -> Option<String> {
    match sensor {
        6 => Some(format!(
            "Authentication failed {} times. The system may be under attack.",
            u32::from(d[1]) + (u32::from(d[2]) << 8)
        )),
        15 if d[0] == 235 => Some("Invalid Data".into()),
        15 if offset == 0 => pick(FIRMWARE_ERRORS, d[1]).map(str::to_string),
        15 => pick(FIRMWARE_PROGRESS, d[1]).map(str::to_string),
        18 if d[0] == 170 => Some(format!(
            "Agent watchdog {:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-... changed to {}",
            d[4],
            d[3],
            d[2],
            d[1],
            d[6],
            d[5],
            watchdog_state(d[7]).unwrap_or("undefined")
        )),
        18 => None,
        30 => Some("No bootable media".into()),
        32 => Some("Operating system lockup or power interrupt".into()),
        35 => Some("System boot failure".into()),
        37 => Some("System firmware started (at least one CPU is properly executing).".into()),
        n => Some(format!("Unknown Sensor Type #{n}")),
    }
}

/// One event log record, as MPS's `parseEventLogs` shapes it; None for a record too short or
/// with an unset time stamp (0 or all ones), which MPS cannot decode either.
pub(crate) fn event_record(raw: &[u8]) -> Option<Value> {
    let b: &[u8; 21] = raw.get(..21)?.try_into().ok()?;
    let ts = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    if ts == 0 || ts == u32::MAX {
        return None;
    }
    let mut data = [0u8; 8];
    data.copy_from_slice(&b[13..21]);
    let mut m = Map::new();
    m.insert("DeviceAddress".into(), b[4].into());
    m.insert("EventSensorType".into(), b[5].into());
    m.insert("EventType".into(), b[6].into());
    m.insert("EventOffset".into(), b[7].into());
    m.insert("EventSourceType".into(), b[8].into());
    m.insert("EventSeverity".into(), b[9].into());
    m.insert("SensorNumber".into(), b[10].into());
    m.insert("Entity".into(), b[11].into());
    m.insert("EntityInstance".into(), b[12].into());
    m.insert("EventData".into(), data.to_vec().into());
    m.insert("TimeStamp".into(), rfc3339(ts).into());
    m.insert(
        "EntityStr".into(),
        pick(ENTITIES, b[11]).unwrap_or("Unknown").into(),
    );
    m.insert("Desc".into(), event_desc(b[5], b[7], &data).into());
    Some(Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_704_511_587), "2024-01-06T03:26:27.000Z");
        assert_eq!(rfc3339(u32::MAX), "2106-02-07T06:28:15.000Z");
    }

    #[test]
    fn real_audit_record() {
        // A record from a real AMT audit log
        // (open-amt-cloud-toolkit/go-wsman-messages responses/amt/auditlog/readrecords.xml).
        let raw = b64("ABMAAAI/9M1uAgAQAAwAAAAoBZkADAAAACQFlA==").unwrap();
        let r = audit_record(&raw).unwrap();
        assert_eq!(r["AuditApp"], "Firmware Update Manager");
        assert_eq!(r["Event"], "Firmware Updated");
        assert_eq!(r["Initiator"], "Local");
        assert_eq!(r["InitiatorType"], 2);
        assert_eq!(r["Time"], "2004-01-02T01:46:22.000Z");
        assert_eq!(r["ExStr"], "From 12.0.40.1433 to 12.0.36.1428");
        // Digest initiator with a user name and a network address.
        let mut rec = vec![0, 16, 0, 2, 0, 5];
        rec.extend_from_slice(b"admin");
        rec.extend_from_slice(&1_700_000_000u32.to_be_bytes());
        rec.extend_from_slice(&[0, 9]);
        rec.extend_from_slice(b"10.0.0.10");
        rec.extend_from_slice(&[0]);
        let r = audit_record(&rec).unwrap();
        assert_eq!(r["Event"], "ACL Entry Added");
        assert_eq!(r["Initiator"], "admin");
        assert_eq!(r["NetAddress"], "10.0.0.10");
        assert_eq!(r["ExStr"], Value::Null);
        // Truncated before the time stamp: refused; garbage never panics.
        assert!(audit_record(&[0, 16, 0, 2, 0, 200]).is_none());
        for n in 0..64 {
            let junk: Vec<u8> = (0..n).map(|i| (i * 37 + n) as u8).collect();
            let _ = audit_record(&junk);
            let _ = event_record(&junk);
            for k in [
                1602, 1603, 1605, 1606, 1607, 1617, 1619, 1900, 2100, 3000, 3001,
            ] {
                let _ = extended(k, &junk);
            }
        }
    }

    #[test]
    fn real_event_records() {
        // From a real AMT event log
        // (open-amt-cloud-toolkit/go-wsman-messages responses/amt/messagelog/getrecords.xml).
        let r = event_record(&b64("Y8iYZf8GbwVoEP8mYaoKAAAAAAAA").unwrap()).unwrap();
        assert_eq!(r["TimeStamp"], "2024-01-06T03:26:27.000Z");
        assert_eq!(r["EventSensorType"], 6);
        assert_eq!(r["Entity"], 38);
        assert_eq!(r["EntityStr"], "Intel(r) ME");
        assert_eq!(
            r["Desc"],
            "Authentication failed 10 times. The system may be under attack."
        );
        let r = event_record(&b64("IgYBZf8PbwJoAf8iAEAHAAAAAAAA").unwrap()).unwrap();
        assert_eq!(r["EventSensorType"], 15);
        assert_eq!(r["EntityStr"], "BIOS");
        assert_eq!(r["Desc"], "PCI resource configuration");
        assert!(event_record(&[1; 20]).is_none());
        assert!(event_record(&[0; 21]).is_none());
    }
}
