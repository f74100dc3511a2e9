//! Operations driven against scripted device answers. Samples marked "real" are AMT answers
//! from open-amt-cloud-toolkit/go-wsman-messages `pkg/wsman/wsmantesting/responses/`.

use super::*;

const NS: &str = "xmlns:a=\"http://www.w3.org/2003/05/soap-envelope\" \
xmlns:b=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" \
xmlns:c=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\" \
xmlns:g=\"http://schemas.xmlsoap.org/ws/2004/09/enumeration\" xmlns:h=\"urn:x\"";

/// An AMT-style answer relating to `id` with this body.
fn env(id: &str, body: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a:Envelope {NS}><a:Header>\
         <b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To>\
         <b:RelatesTo>{id}</b:RelatesTo><b:Action a:mustUnderstand=\"true\">x</b:Action>\
         <b:MessageID>uuid:00000000-8086-8086-8086-000000000001</b:MessageID></a:Header>\
         <a:Body>{body}</a:Body></a:Envelope>"
    )
    .into_bytes()
}

fn enum_ctx(id: &str, ctx: &str) -> Vec<u8> {
    env(
        id,
        &format!(
            "<g:EnumerateResponse><g:EnumerationContext>{ctx}</g:EnumerationContext></g:EnumerateResponse>"
        ),
    )
}

/// Real: AMT 12's fault for an unknown resource.
const FAULT: &str = r#"<?xml version="1.0" encoding="UTF-8"?><a:Envelope xmlns:g="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd" xmlns:f="http://schemas.xmlsoap.org/ws/2004/08/eventing" xmlns:e="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:d="http://schemas.xmlsoap.org/ws/2004/09/transfer" xmlns:c="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:h="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:i="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a:Header><b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To><b:RelatesTo>0</b:RelatesTo><b:Action a:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/fault</b:Action><b:MessageID>uuid:00000000-8086-8086-8086-000000000061</b:MessageID></a:Header><a:Body><a:Fault><a:Code><a:Value>a:Sender</a:Value><a:Subcode><a:Value>b:DestinationUnreachable</a:Value></a:Subcode></a:Code><a:Reason><a:Text xml:lang="en-US">No route can be determined to reach the destination role defined by the WSAddressing To.</a:Text></a:Reason><a:Detail></a:Detail></a:Fault></a:Body></a:Envelope>"#;

/// Real: CIM_ServiceAvailableToElement Pull (responses/cim/service/availabletoelement/pull.xml).
const POWER_PULL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:g="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:h="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_AssociatedPowerManagementService">
    <a:Header>
        <b:RelatesTo>1</b:RelatesTo>
        <b:Action a:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/enumeration/PullResponse</b:Action>
    </a:Header>
    <a:Body>
        <g:PullResponse>
            <g:Items>
                <h:CIM_AssociatedPowerManagementService>
                    <h:AvailableRequestedPowerStates>10</h:AvailableRequestedPowerStates>
                    <h:AvailableRequestedPowerStates>8</h:AvailableRequestedPowerStates>
                    <h:PowerState>2</h:PowerState>
                    <h:ServiceProvided>
                        <b:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:Address>
                        <b:ReferenceParameters>
                            <c:ResourceURI>http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_PowerManagementService</c:ResourceURI>
                            <c:SelectorSet><c:Selector Name="CreationClassName">CIM_PowerManagementService</c:Selector></c:SelectorSet>
                        </b:ReferenceParameters>
                    </h:ServiceProvided>
                </h:CIM_AssociatedPowerManagementService>
            </g:Items>
            <g:EndOfSequence></g:EndOfSequence>
        </g:PullResponse>
    </a:Body>
</a:Envelope>"#;

/// Real: AMT_BootSettingData Get (responses/amt/boot/settingdata/get.xml).
const BOOT_DATA: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:g="http://intel.com/wbem/wscim/1/amt-schema/1/AMT_BootSettingData">
    <a:Header><b:RelatesTo>12</b:RelatesTo><c:ResourceURI>http://intel.com/wbem/wscim/1/amt-schema/1/AMT_BootSettingData</c:ResourceURI></a:Header>
    <a:Body>
        <g:AMT_BootSettingData>
            <g:BIOSLastStatus>2</g:BIOSLastStatus>
            <g:BIOSLastStatus>0</g:BIOSLastStatus>
            <g:BIOSPause>false</g:BIOSPause>
            <g:BIOSSetup>false</g:BIOSSetup>
            <g:BootMediaIndex>0</g:BootMediaIndex>
            <g:ConfigurationDataReset>false</g:ConfigurationDataReset>
            <g:ElementName>Intel(r) AMT Boot Configuration Settings</g:ElementName>
            <g:EnforceSecureBoot>false</g:EnforceSecureBoot>
            <g:FirmwareVerbosity>0</g:FirmwareVerbosity>
            <g:ForcedProgressEvents>false</g:ForcedProgressEvents>
            <g:IDERBootDevice>0</g:IDERBootDevice>
            <g:InstanceID>Intel(r) AMT:BootSettingData 0</g:InstanceID>
            <g:LockKeyboard>false</g:LockKeyboard>
            <g:LockPowerButton>false</g:LockPowerButton>
            <g:LockResetButton>false</g:LockResetButton>
            <g:LockSleepButton>false</g:LockSleepButton>
            <g:OptionsCleared>false</g:OptionsCleared>
            <g:OwningEntity>Intel(r) AMT</g:OwningEntity>
            <g:RSEPassword></g:RSEPassword>
            <g:ReflashBIOS>false</g:ReflashBIOS>
            <g:SecureErase>false</g:SecureErase>
            <g:UseIDER>false</g:UseIDER>
            <g:UseSOL>false</g:UseSOL>
            <g:UseSafeMode>false</g:UseSafeMode>
            <g:UserPasswordBypass>false</g:UserPasswordBypass>
        </g:AMT_BootSettingData>
    </a:Body>
</a:Envelope>"#;

/// Real: RequestPowerStateChange output (responses/cim/power/managementservice/).
const RPSC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:c="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:g="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_PowerManagementService">
    <a:Header>
        <b:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:To>
        <b:RelatesTo>0</b:RelatesTo>
        <b:Action a:mustUnderstand="true">http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_PowerManagementService/RequestPowerStateChangeResponse</b:Action>
        <b:MessageID>uuid:00000000-8086-8086-8086-0000000003B8</b:MessageID>
        <c:ResourceURI>http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_PowerManagementService</c:ResourceURI>
    </a:Header>
    <a:Body><g:RequestPowerStateChange_OUTPUT><g:ReturnValue>0</g:ReturnValue></g:RequestPowerStateChange_OUTPUT></a:Body>
</a:Envelope>"#;

/// Real: AMT_AuditLog ReadRecords (responses/amt/auditlog/readrecords.xml).
const AUDIT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:g="http://intel.com/wbem/wscim/1/amt-schema/1/AMT_AuditLog">
    <a:Header><b:RelatesTo>5</b:RelatesTo></a:Header>
    <a:Body>
        <g:ReadRecords_OUTPUT>
            <g:TotalRecordCount>2</g:TotalRecordCount>
            <g:RecordsReturned>2</g:RecordsReturned>
            <g:EventRecords>ABMAAAI/9M1uAgAQAAwAAAAoBZkADAAAACQFlA==</g:EventRecords>
            <g:EventRecords>ABMAAAI/9M1vAgAQAAwAAAAoBZkADAAAACQFlA==</g:EventRecords>
            <g:ReturnValue>0</g:ReturnValue>
        </g:ReadRecords_OUTPUT>
    </a:Body>
</a:Envelope>"#;

/// Real: AMT_MessageLog GetRecords (responses/amt/messagelog/getrecords.xml).
const EVENTS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:g="http://intel.com/wbem/wscim/1/amt-schema/1/AMT_MessageLog">
    <a:Header><b:RelatesTo>9</b:RelatesTo></a:Header>
    <a:Body>
        <g:GetRecords_OUTPUT>
            <g:IterationIdentifier>3</g:IterationIdentifier>
            <g:NoMoreRecords>true</g:NoMoreRecords>
            <g:RecordArray>Y8iYZf8GbwVoEP8mYaoKAAAAAAAA</g:RecordArray>
            <g:RecordArray>IgYBZf8PbwJoAf8iAEAHAAAAAAAA</g:RecordArray>
            <g:RecordArray>IgYBZf8PbwJoAf8iAEAHAAAAAAAA</g:RecordArray>
            <g:ReturnValue>0</g:ReturnValue>
        </g:GetRecords_OUTPUT>
    </a:Body>
</a:Envelope>"#;

/// Real: AMT_RedirectionService Get (responses/amt/redirectionservice/get.xml).
const REDIRECTION_GET: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<a:Envelope xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:b="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:g="http://intel.com/wbem/wscim/1/amt-schema/1/AMT_RedirectionService">
    <a:Header><b:RelatesTo>5</b:RelatesTo></a:Header>
    <a:Body>
        <g:AMT_RedirectionService>
            <g:CreationClassName>AMT_RedirectionService</g:CreationClassName>
            <g:ElementName>Intel(r) AMT Redirection Service</g:ElementName>
            <g:EnabledState>32771</g:EnabledState>
            <g:ListenerEnabled>true</g:ListenerEnabled>
            <g:Name>Intel(r) AMT Redirection Service</g:Name>
            <g:SystemCreationClassName>CIM_ComputerSystem</g:SystemCreationClassName>
            <g:SystemName>Intel(r) AMT</g:SystemName>
        </g:AMT_RedirectionService>
    </a:Body>
</a:Envelope>"#;

/// Real: CIM_KVMRedirectionSAP Get (responses/cim/kvm/get.xml), AMT's odd `= "` spacing kept.
const KVM_GET: &str = r#"<?xml version= "1.0" encoding= "UTF-8"?>
<a:Envelope xmlns:a= "http://www.w3.org/2003/05/soap-envelope" xmlns:b= "http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:g= "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_KVMRedirectionSAP">
<a:Header><b:RelatesTo>4</b:RelatesTo></a:Header>
<a:Body>
<g:CIM_KVMRedirectionSAP>
<g:CreationClassName>CIM_KVMRedirectionSAP</g:CreationClassName>
<g:ElementName>KVM Redirection Service Access Point</g:ElementName>
<g:EnabledState>6</g:EnabledState>
<g:KVMProtocol>4</g:KVMProtocol>
<g:Name>KVM Redirection Service Access Point</g:Name>
<g:RequestedState>2</g:RequestedState>
<g:SystemCreationClassName>CIM_ComputerSystem</g:SystemCreationClassName>
<g:SystemName>ManagedSystem</g:SystemName>
</g:CIM_KVMRedirectionSAP>
</a:Body>
</a:Envelope>"#;

const OPT_IN_GET: &str = "<h:IPS_OptInService><h:CanModifyOptInPolicy>1</h:CanModifyOptInPolicy>\
<h:CreationClassName>IPS_OptInService</h:CreationClassName><h:ElementName>Intel(r) AMT OptIn Service</h:ElementName>\
<h:Name>Intel(r) AMT OptIn Service</h:Name><h:OptInCodeTimeout>120</h:OptInCodeTimeout>\
<h:OptInDisplayTimeout>300</h:OptInDisplayTimeout><h:OptInRequired>4294967295</h:OptInRequired>\
<h:OptInState>0</h:OptInState><h:SystemCreationClassName>CIM_ComputerSystem</h:SystemCreationClassName>\
<h:SystemName>Intel(r) AMT</h:SystemName></h:IPS_OptInService>";

/// Drives `op`, answering request n (message id = `ids[n]`) with `answers[n]`; returns the
/// requests sent.
fn drive(op: &mut Operation, script: &[(&str, u16, &[u8])]) -> Vec<String> {
    let mut sent = Vec::new();
    for (id, status, body) in script {
        let req = op.next_request(id).expect("a request");
        sent.push(String::from_utf8(req).unwrap());
        op.on_response(*status, body).unwrap();
    }
    assert!(
        op.next_request("end").is_none(),
        "more requests than scripted"
    );
    sent
}

#[test]
fn validation_follows_mps() {
    for a in [2, 5, 8, 10, 17, 100, 401, 500, 501] {
        assert_eq!(Request::PowerAction { action: a }.validate(), Ok(()), "{a}");
    }
    for a in [0, 1, 9, 18, 99, 102, 502] {
        assert!(
            Request::PowerAction { action: a }.validate().is_err(),
            "{a}"
        );
    }
    for a in BOOT_ACTIONS {
        let r = Request::BootOptions {
            action: a,
            use_sol: true,
        };
        assert_eq!(r.validate(), Ok(()));
    }
    for a in [2, 105, 106, 500] {
        let r = Request::BootOptions {
            action: a,
            use_sol: false,
        };
        assert!(r.validate().is_err());
        let mut op = Operation::new(r, "h");
        assert!(op.next_request("1").is_none());
        assert!(matches!(op.finish(), Err(AmtError::InvalidArgument(_))));
    }
    assert_eq!("KVM".parse::<UserConsent>(), Ok(UserConsent::Kvm));
    assert!("some".parse::<UserConsent>().is_err());
}

#[test]
fn version_pulls_until_end_of_sequence() {
    let mut op = Operation::new(Request::Version, "g:16992");
    let si = |id: &str, ver: &str| {
        format!(
            "<h:CIM_SoftwareIdentity><h:InstanceID>{id}</h:InstanceID><h:IsEntity>true</h:IsEntity><h:VersionString>{ver}</h:VersionString></h:CIM_SoftwareIdentity>"
        )
    };
    let pull1 = env(
        "2",
        &format!(
            "<g:PullResponse><g:EnumerationContext>C2</g:EnumerationContext><g:Items>{}</g:Items></g:PullResponse>",
            si("Flash", "16.1.25")
        ),
    );
    let pull2 = env(
        "3",
        &format!(
            "<g:PullResponse><g:Items>{}{}</g:Items><g:EndOfSequence/></g:PullResponse>",
            si("AMT", "16.1.25"),
            si("Sku", "16392")
        ),
    );
    let setup = env(
        "4",
        "<h:AMT_SetupAndConfigurationService><h:ProvisioningMode>1</h:ProvisioningMode><h:ProvisioningState>2</h:ProvisioningState><h:Secret>x</h:Secret></h:AMT_SetupAndConfigurationService>",
    );
    let sent = drive(
        &mut op,
        &[
            ("1", 200, &enum_ctx("1", "C1")),
            ("2", 200, &pull1),
            ("3", 200, &pull2),
            ("4", 200, &setup),
        ],
    );
    assert!(sent[0].contains("enumeration/Enumerate</a:Action>"));
    assert!(sent[1].contains("<EnumerationContext>C1</EnumerationContext>"));
    assert!(sent[2].contains("<EnumerationContext>C2</EnumerationContext>"));
    assert!(sent[3].contains("AMT_SetupAndConfigurationService</w:ResourceURI>"));
    let v = op.finish().unwrap();
    let r = &v["CIM_SoftwareIdentity"]["responses"];
    assert_eq!(r.as_array().unwrap().len(), 3);
    assert_eq!(r[1]["VersionString"], "16.1.25");
    assert_eq!(r[2]["VersionString"], 16392);
    let s = &v["AMT_SetupAndConfigurationService"]["response"];
    assert_eq!(s["ProvisioningState"], 2);
    assert!(
        s.get("Secret").is_none(),
        "only listed properties are reported"
    );
}

#[test]
fn power_state_with_and_without_os_power_saving() {
    // Older AMT has no IPS_PowerManagementService: its fault is skipped.
    let mut op = Operation::new(Request::PowerState, "h");
    let sent = drive(
        &mut op,
        &[
            ("0", 400, FAULT.as_bytes()),
            ("7", 200, &enum_ctx("7", "E")),
            ("1", 200, POWER_PULL.as_bytes()),
        ],
    );
    assert!(sent[0].contains("IPS_PowerManagementService</w:ResourceURI>"));
    assert_eq!(op.finish().unwrap(), json!({ "powerstate": 2 }));
    let mut op = Operation::new(Request::PowerState, "h");
    let ips = env(
        "0",
        "<h:IPS_PowerManagementService><h:OSPowerSavingState>2</h:OSPowerSavingState></h:IPS_PowerManagementService>",
    );
    drive(
        &mut op,
        &[
            ("0", 200, &ips),
            ("7", 200, &enum_ctx("7", "E")),
            ("1", 200, POWER_PULL.as_bytes()),
        ],
    );
    assert_eq!(
        op.finish().unwrap(),
        json!({ "powerstate": 2, "OSPowerSavingState": 2 })
    );
}

#[test]
fn power_action_clears_boot_settings_then_changes_state() {
    let mut op = Operation::new(Request::PowerAction { action: 8 }, "h");
    let sent = drive(
        &mut op,
        &[
            ("12", 200, BOOT_DATA.as_bytes()),
            ("p", 200, &env("p", "")),
            ("0", 200, RPSC.as_bytes()),
        ],
    );
    let put = &sent[1];
    assert!(put.contains("transfer/Put</a:Action>"));
    assert!(put.contains("<h:InstanceID>Intel(r) AMT:BootSettingData 0</h:InstanceID>"));
    assert!(put.contains("<h:UseSOL>false</h:UseSOL>"));
    assert!(
        !put.contains("OptionsCleared") && !put.contains("BIOSLastStatus"),
        "{put}"
    );
    assert!(sent[2].contains("<h:PowerState>8</h:PowerState>"));
    assert!(sent[2].contains("<Selector Name=\"Name\">ManagedSystem</Selector>"));
    let v = op.finish().unwrap();
    assert_eq!(
        v["Body"],
        json!({ "ReturnValue": 0, "ReturnValueStr": "SUCCESS" })
    );
    assert_eq!(v["Header"]["RelatesTo"], 0);
    // An extended action on power/action: boot settings cleared, then INVALID_PARAMETER.
    let mut op = Operation::new(Request::PowerAction { action: 100 }, "h");
    drive(
        &mut op,
        &[("12", 200, BOOT_DATA.as_bytes()), ("p", 200, &env("p", ""))],
    );
    assert_eq!(
        op.finish().unwrap()["Body"]["ReturnValueStr"],
        "INVALID_PARAMETER"
    );
}

#[test]
fn boot_options_to_pxe() {
    let mut op = Operation::new(
        Request::BootOptions {
            action: 400,
            use_sol: true,
        },
        "h",
    );
    let out = |m: &str| format!("<h:{m}_OUTPUT><h:ReturnValue>0</h:ReturnValue></h:{m}_OUTPUT>");
    let sent = drive(
        &mut op,
        &[
            ("12", 200, BOOT_DATA.as_bytes()),
            ("p", 200, &env("p", "")),
            ("r", 200, &env("r", &out("SetBootConfigRole"))),
            ("c", 200, &env("c", &out("ChangeBootOrder"))),
            ("0", 200, RPSC.as_bytes()),
        ],
    );
    assert!(sent[1].contains("<h:UseSOL>true</h:UseSOL>"));
    assert!(
        sent[2].contains("Intel(r) AMT: Boot Configuration 0")
            && sent[2].contains("<h:Role>1</h:Role>")
    );
    assert!(sent[3].contains("Intel(r) AMT: Force PXE Boot"));
    assert!(sent[4].contains("<h:PowerState>10</h:PowerState>"));
    assert_eq!(op.finish().unwrap()["Body"]["ReturnValue"], 0);
}

#[test]
fn features_get_from_real_answers() {
    let mut op = Operation::new(Request::FeaturesGet, "h");
    drive(
        &mut op,
        &[
            ("5", 200, REDIRECTION_GET.as_bytes()),
            ("o", 200, &env("o", OPT_IN_GET)),
            ("4", 200, KVM_GET.as_bytes()),
            ("b", 400, FAULT.as_bytes()),
            ("s", 400, FAULT.as_bytes()),
            ("c", 400, FAULT.as_bytes()),
            ("d", 400, FAULT.as_bytes()),
        ],
    );
    assert_eq!(
        op.finish().unwrap(),
        json!({
            "userConsent": "all", "redirection": true, "KVM": true, "SOL": true, "IDER": true,
            "optInState": 0, "kvmAvailable": true, "ocr": false, "httpsBootSupported": false,
            "winREBootSupported": false, "localPBABootSupported": false, "remoteErase": false,
        })
    );
}

#[test]
fn features_set_changes_only_what_differs() {
    let mut op = Operation::new(
        Request::FeaturesSet {
            user_consent: UserConsent::Kvm,
            enable_sol: false,
            enable_ider: true,
            enable_kvm: true,
            ocr: None,
        },
        "h",
    );
    let rsc = "<h:RequestStateChange_OUTPUT><h:ReturnValue>0</h:ReturnValue></h:RequestStateChange_OUTPUT>";
    let sent = drive(
        &mut op,
        &[
            ("5", 200, REDIRECTION_GET.as_bytes()),
            ("o", 200, &env("o", OPT_IN_GET)),
            ("4", 200, KVM_GET.as_bytes()),
            ("r", 200, &env("r", rsc)),
            ("k", 200, &env("k", rsc)),
            ("p", 200, &env("p", "")),
            ("q", 200, &env("q", "")),
        ],
    );
    assert!(sent[3].contains("AMT_RedirectionService/RequestStateChange</a:Action>"));
    assert!(sent[3].contains("<h:RequestedState>32769</h:RequestedState>"));
    assert!(sent[4].contains("<h:RequestedState>2</h:RequestedState>"));
    assert!(sent[5].contains("<h:EnabledState>32769</h:EnabledState>"));
    assert!(sent[5].contains("<h:ListenerEnabled>true</h:ListenerEnabled>"));
    assert!(sent[6].contains("<h:OptInRequired>1</h:OptInRequired>"));
    assert_eq!(
        op.finish().unwrap(),
        json!({ "status": "Updated AMT Features" })
    );
    // A failed state change fails the operation.
    let mut op = Operation::new(
        Request::FeaturesSet {
            user_consent: UserConsent::All,
            enable_sol: false,
            enable_ider: false,
            enable_kvm: true,
            ocr: Some(true),
        },
        "h",
    );
    for (id, b) in [
        ("5", REDIRECTION_GET.as_bytes().to_vec()),
        ("o", env("o", OPT_IN_GET)),
        ("4", KVM_GET.as_bytes().to_vec()),
    ] {
        op.next_request(id).unwrap();
        op.on_response(200, &b).unwrap();
    }
    op.next_request("r").unwrap();
    let bad = env(
        "r",
        "<h:RequestStateChange_OUTPUT><h:ReturnValue>2</h:ReturnValue></h:RequestStateChange_OUTPUT>",
    );
    assert_eq!(
        op.on_response(200, &bad),
        Err(AmtError::ReturnValue {
            method: "RequestStateChange",
            value: 2
        })
    );
    assert!(op.next_request("x").is_none());
}

#[test]
fn audit_and_event_logs_from_real_answers() {
    let mut op = Operation::new(Request::AuditLog { start_index: 0 }, "h");
    let sent = drive(&mut op, &[("5", 200, AUDIT.as_bytes())]);
    assert!(sent[0].contains("<h:StartIndex>1</h:StartIndex>"));
    let v = op.finish().unwrap();
    assert_eq!(v["totalCnt"], 2);
    let recs = v["records"].as_array().unwrap();
    assert_eq!(recs.len(), 2);
    // Newest first.
    assert_eq!(recs[0]["Time"], "2004-01-02T01:46:23.000Z");
    assert_eq!(recs[1]["Event"], "Firmware Updated");

    let mut op = Operation::new(Request::EventLog, "h");
    let pos = env(
        "8",
        "<h:PositionToFirstRecord_OUTPUT><h:IterationIdentifier>1</h:IterationIdentifier><h:ReturnValue>0</h:ReturnValue></h:PositionToFirstRecord_OUTPUT>",
    );
    let sent = drive(&mut op, &[("8", 200, &pos), ("9", 200, EVENTS.as_bytes())]);
    assert!(sent[1].contains("<h:IterationIdentifier>1</h:IterationIdentifier>"));
    let v = op.finish().unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
    assert_eq!(v[1]["Desc"], "PCI resource configuration");
}

#[test]
fn audit_log_reads_the_newest_page() {
    // 25 records, 10 per page, startIndex 1: MPS reads from 25 - 1 - 10 = 14.
    let page = |id: &str, n: u32| {
        let rec = "<h:EventRecords>ABMAAAI/9M1uAgAQAAwAAAAoBZkADAAAACQFlA==</h:EventRecords>"
            .repeat(n as usize);
        env(
            id,
            &format!(
                "<h:ReadRecords_OUTPUT><h:TotalRecordCount>25</h:TotalRecordCount><h:RecordsReturned>{n}</h:RecordsReturned>{rec}<h:ReturnValue>0</h:ReturnValue></h:ReadRecords_OUTPUT>"
            ),
        )
    };
    let mut op = Operation::new(Request::AuditLog { start_index: 1 }, "h");
    let sent = drive(
        &mut op,
        &[("1", 200, &page("1", 10)), ("2", 200, &page("2", 10))],
    );
    assert!(sent[1].contains("<h:StartIndex>14</h:StartIndex>"));
    assert_eq!(
        op.finish().unwrap()["records"].as_array().unwrap().len(),
        10
    );
}

#[test]
fn faults_errors_and_misuse() {
    let mut op = Operation::new(Request::GeneralSettings, "h");
    op.next_request("0").unwrap();
    assert_eq!(
        op.on_response(400, FAULT.as_bytes()),
        Err(AmtError::Fault {
            code: "DestinationUnreachable".into(),
            reason: "No route can be determined to reach the destination role defined by the \
                     WSAddressing To."
                .into()
        })
    );
    assert!(matches!(op.finish(), Err(AmtError::Fault { .. })));

    let cases: [(u16, Vec<u8>, AmtError); 7] = [
        (500, Vec::new(), AmtError::Http(500)),
        (200, Vec::new(), AmtError::BadResponse("empty answer")),
        (200, b"<a:Envelope".to_vec(), AmtError::BadResponse("malformed XML")),
        (200, b"<html/>".to_vec(), AmtError::BadResponse("not a SOAP envelope")),
        (200, env("other", "<h:AMT_GeneralSettings/>"), AmtError::BadResponse("answer relates to another request")),
        (200, env("1", "<h:Other/>"), AmtError::BadResponse("instance missing from Get answer")),
        (200, FAULT.replace("<b:RelatesTo>0", "<b:RelatesTo>1").into_bytes(), AmtError::Fault {
            code: "DestinationUnreachable".into(),
            reason: "No route can be determined to reach the destination role defined by the WSAddressing To.".into(),
        }),
    ];
    for (status, body, want) in cases {
        let mut op = Operation::new(Request::GeneralSettings, "h");
        op.next_request("1").unwrap();
        assert_eq!(op.on_response(status, &body), Err(want));
    }

    let mut op = Operation::new(Request::GeneralSettings, "h");
    assert_eq!(
        op.on_response(200, b""),
        Err(AmtError::Sequence("no request outstanding"))
    );
    let mut op = Operation::new(Request::GeneralSettings, "h");
    op.next_request("1").unwrap();
    assert!(op.next_request("2").is_none(), "one exchange at a time");
    assert_eq!(
        op.finish(),
        Err(AmtError::Sequence("operation not finished"))
    );
    let mut op = Operation::new(Request::GeneralSettings, "h");
    op.next_request("1").unwrap();
    op.on_response(
        200,
        &env(
            "1",
            "<h:AMT_GeneralSettings><h:HostName>pc</h:HostName></h:AMT_GeneralSettings>",
        ),
    )
    .unwrap();
    let v = op.finish().unwrap();
    assert_eq!(v["Body"], json!({ "HostName": "pc" }));
    assert_eq!(v["Header"]["RelatesTo"], 1);
}

#[test]
fn endless_enumeration_is_cut_off() {
    let mut op = Operation::new(Request::Version, "h");
    let more = |id: &str| {
        env(
            id,
            "<g:PullResponse><g:EnumerationContext>C</g:EnumerationContext><g:Items/></g:PullResponse>",
        )
    };
    op.next_request("0").unwrap();
    op.on_response(200, &enum_ctx("0", "C")).unwrap();
    let mut n = 1;
    while op.next_request(&n.to_string()).is_some() {
        op.on_response(200, &more(&n.to_string())).unwrap();
        n += 1;
    }
    assert_eq!(n, MAX_EXCHANGES);
    assert_eq!(op.finish(), Err(AmtError::TooManyExchanges));
    // A Pull that neither ends nor continues.
    let mut op = Operation::new(Request::Version, "h");
    op.next_request("0").unwrap();
    op.on_response(200, &enum_ctx("0", "C")).unwrap();
    op.next_request("1").unwrap();
    assert!(
        op.on_response(
            200,
            &env("1", "<g:PullResponse><g:Items/></g:PullResponse>")
        )
        .is_err()
    );
}

#[test]
fn garbage_never_panics() {
    let reqs = [
        Request::Version,
        Request::HardwareInfo,
        Request::PowerState,
        Request::PowerAction { action: 501 },
        Request::FeaturesGet,
        Request::AuditLog { start_index: 3 },
        Request::EventLog,
    ];
    let bodies: Vec<Vec<u8>> = vec![
        FAULT.as_bytes().to_vec(),
        AUDIT
            .replace("2</g:TotalRecordCount>", "99</g:TotalRecordCount>")
            .into_bytes(),
        EVENTS.replace("Y8iY", "!!!!").into_bytes(),
        env(
            "x",
            "<g:PullResponse><g:Items><h:X><h:PowerState>99999999999999999999</h:PowerState></h:X></g:Items><g:EndOfSequence/></g:PullResponse>",
        ),
        b"\xff\xfe<".to_vec(),
    ];
    for r in reqs {
        for b in &bodies {
            let mut op = Operation::new(r.clone(), "h");
            while op.next_request("x").is_some() {
                if op.on_response(200, b).is_err() {
                    break;
                }
            }
            let _ = op.finish();
        }
    }
}
