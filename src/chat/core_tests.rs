//! Unit tests of the chat core: no actor, socket or disk.

use super::*;
use crate::store::record::Pos;

fn user(s: &str) -> UserId {
    UserId::parse(s, 64).expect("valid id") // ok: test
}

fn meta(members: &[&str], group: bool, private: bool) -> ChatMeta {
    ChatMeta {
        id: crate::model::ChatId::parse("c", 64).expect("valid id"), // ok: test
        user_ids: Members::new(members.iter().map(|m| user(m)).collect()),
        created_at: 0,
        name: String::new(),
        description: String::new(),
        group,
        private,
        invited: Members::default(),
    }
}

const RULES: Rules = Rules { open: false, max_members: 3 };

fn draft(from: &str, client: Option<&str>, id: Option<&str>) -> Draft {
    Draft {
        user_id: user(from),
        subject: String::new(),
        text: "hi".into(),
        client_id: client.map(|c| ClientId::parse(c, 64).expect("valid id")), // ok: test
        id: id.map(|c| MessageId::parse(c, 64).expect("valid id")),           // ok: test
    }
}

fn loc(n: u64) -> Loc {
    Loc { pos: Pos { segment: 1, offset: n * 100 }, len: 100 }
}

#[test]
fn seqs_are_assigned_in_order_and_indexed_when_durable() {
    let mut core = ChatCore::new(meta(&["a", "b"], false, false), RULES);
    let m1 = core.push(draft("a", Some("x"), None), 5);
    let m2 = core.push(draft("b", None, None), 6);
    assert_eq!((m1.seq, m2.seq), (1, 2));
    assert_eq!(core.durable_len(), 0);
    assert_eq!(core.durable(1, loc(1)).map(|m| m.seq), Some(1));
    assert_eq!(core.durable_len(), 1);
    assert_eq!((core.loc(1), core.loc(2)), (Some(loc(1)), None), "seq 2 is still in flight");
    assert_eq!(core.durable(2, loc(2)).map(|m| m.seq), Some(2));
    assert_eq!((core.loc(1), core.loc(2), core.loc(3)), (Some(loc(1)), Some(loc(2)), None));
}

#[test]
fn repeats_are_found_by_client_id_or_message_id_in_flight_or_durable() {
    let mut core = ChatCore::new(meta(&["a"], false, false), RULES);
    let sent = core.push(draft("a", Some("c1"), None), 0);
    assert_eq!(core.find(&draft("a", Some("c1"), None)), Ok(Some(1)), "in flight");
    core.durable(1, loc(1));
    assert_eq!(core.find(&draft("a", Some("c1"), None)), Ok(Some(1)), "durable");
    // A chats API id equal to the server-made id of a message finds it too.
    assert_eq!(core.find(&draft("a", None, Some(sent.id.as_str()))), Ok(Some(1)));
    assert_eq!(core.find(&draft("a", None, Some("c1"))), Ok(Some(1)), "an id equal to a client id");
    assert_eq!(core.find(&draft("a", Some("other"), None)), Ok(None));
    let plain = core.push(draft("a", None, None), 0);
    assert_eq!(plain.id.as_str(), plain.client_id.as_str(), "one UUID for both when none is given");
}

#[test]
fn non_members_cannot_send_unless_membership_is_open() {
    let core = ChatCore::new(meta(&["a"], false, false), RULES);
    assert!(matches!(core.find(&draft("z", None, None)), Err(Error::Forbidden(_))));
    let open = ChatCore::new(meta(&["a"], false, false), Rules { open: true, ..RULES });
    assert_eq!(open.find(&draft("z", None, None)), Ok(None));
}

#[test]
fn a_failed_log_gives_up_every_message_in_flight() {
    let mut core = ChatCore::new(meta(&["a"], false, false), RULES);
    core.push(draft("a", Some("c1"), None), 0);
    core.push(draft("a", Some("c2"), None), 0);
    assert_eq!(core.abandon(1), vec![1, 2]);
    assert_eq!(core.find(&draft("a", Some("c1"), None)), Ok(None), "a retry may write again later");
    assert_eq!(core.push(draft("a", None, None), 0).seq, 1);
    // The log's refusal of seq 2, given up already, arrives late: the new seq 1 stays in flight.
    assert_eq!(core.abandon(2), Vec::<u64>::new());
    assert_eq!(core.durable(1, loc(1)).map(|m| m.seq), Some(1));
}

#[test]
fn a_snapshot_round_trips() {
    let mut core = ChatCore::new(meta(&["a"], false, false), RULES);
    core.push(draft("a", Some("c1"), None), 0);
    core.push(draft("a", None, Some("m2")), 0);
    core.push(draft("a", Some("c3"), None), 0);
    core.durable(1, loc(1));
    core.durable(2, loc(2));
    assert_eq!(core.unsaved().len(), 2, "only durable messages");
    let snap = ChatSnapshot { chat: 7, meta: core.meta().clone(), entries: core.unsaved().to_vec() };
    core.saved(1);
    assert_eq!(core.unsaved().len(), 1, "saved entries are not saved again");
    let back = ChatCore::from_snapshot(snap, RULES);
    assert!(back.unsaved().is_empty(), "a loaded chat's index is in its file");
    assert_eq!(back.durable_len(), 2);
    assert_eq!(back.find(&draft("a", Some("c1"), None)), Ok(Some(1)));
    assert_eq!(back.find(&draft("a", None, Some("m2"))), Ok(Some(2)));
    assert_eq!(back.find(&draft("a", Some("c3"), None)), Ok(None));
}

#[test]
fn membership_changes_write_only_what_changes() {
    let mut core = ChatCore::new(meta(&["a", "b"], true, false), RULES);
    assert_eq!(core.plan(&Change::Join(user("c")), None), Ok(vec![MemberEdit::Add(user("c"))]));
    assert_eq!(core.plan(&Change::Join(user("a")), None), Ok(vec![]), "already a member");
    assert_eq!(core.plan(&Change::Leave(user("z")), None), Ok(vec![]));
    let edits = core.plan(&Change::Leave(user("b")), Some(&user("b"))).expect("b may leave"); // ok: test
    assert_eq!(core.apply(&edits), vec![user("b")]);
    assert!(!core.members().contains(&user("b")));
    assert!(matches!(core.plan(&Change::Kick(user("a")), Some(&user("b"))), Err(Error::Forbidden(_))));
    let joined = core.plan(&Change::Join(user("c")), None).expect("c may join"); // ok: test
    core.apply(&joined);
    core.apply(&[MemberEdit::Add(user("d"))]);
    assert!(matches!(core.plan(&Change::Join(user("e")), None), Err(Error::BadRequest(_))), "full");
}

#[test]
fn private_groups_and_plain_chats_are_joined_by_invitation() {
    let mut core = ChatCore::new(meta(&["a"], true, true), RULES);
    assert!(matches!(core.plan(&Change::Join(user("b")), None), Err(Error::Forbidden(_))));
    let invite = core.plan(&Change::Invite(user("b")), Some(&user("a"))).expect("a member invites"); // ok: test
    assert_eq!(invite, vec![MemberEdit::Add(user("b"))], "an invitation makes a member");
    core.apply(&invite);
    assert_eq!(core.plan(&Change::Join(user("b")), None), Ok(vec![]), "a member joins as they are");
    let plain = ChatCore::new(meta(&["a"], false, false), RULES);
    assert!(matches!(plain.plan(&Change::Join(user("b")), None), Err(Error::Forbidden(_))));
    let kick = core.plan(&Change::Kick(user("b")), None).expect("a key may kick"); // ok: test
    assert_eq!(kick, vec![MemberEdit::Remove(user("b"))]);
}

#[test]
fn invitations_are_bounded_by_max_members() {
    let mut core = ChatCore::new(meta(&["a"], true, true), RULES);
    for u in ["b", "c"] {
        let edits = core.plan(&Change::Invite(user(u)), None).expect("room to invite"); // ok: test
        core.apply(&edits);
    }
    assert!(matches!(core.plan(&Change::Invite(user("e")), None), Err(Error::BadRequest(_))));
}
