//! The one typed parse of a message to send, shared by `chat.Send`, `chats.SendMessage` and a
//! WebSocket frame: the text is required and bounded, the subject bounded, the ids valid.
//! Each caller checks its own id fields first, in its endpoint's order.

use crate::chat::Draft;
use crate::config::LimitSettings;
use crate::error::{Error, Field};
use crate::model::{ClientId, MessageId, UserId};

/// The fields of a message as a request carries them.
#[derive(Debug, Default)]
pub struct DraftFields<'a> {
    pub text: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub client_id: Option<&'a str>,
    /// A message id of the caller's choosing (the `chats` API).
    pub id: Option<&'a str>,
}

/// A parsed message that does not yet say who sends it: whether the caller may act as the
/// sender is checked after every 400 (docs/API.md section 5's order).
pub struct Unsent {
    text: String,
    subject: String,
    client_id: Option<ClientId>,
    id: Option<MessageId>,
}

impl Unsent {
    pub fn from(self, user_id: UserId) -> Draft {
        Draft { user_id, text: self.text, subject: self.subject, client_id: self.client_id, id: self.id }
    }
}

impl DraftFields<'_> {
    /// Checks the text (missing, then size), then the subject and ids.
    pub fn parse(self, limits: &LimitSettings) -> Result<Unsent, Error> {
        fn given(s: Option<&str>) -> Option<&str> {
            s.filter(|s| !s.is_empty())
        }
        let text = given(self.text).ok_or(Error::Missing(Field::Text))?;
        Ok(Unsent {
            text: bounded(text, limits.max_text_bytes, "text")?,
            subject: bounded(self.subject.unwrap_or(""), limits.max_subject_bytes, "subject")?,
            client_id: given(self.client_id).map(|c| ClientId::parse(c, limits.max_id_bytes)).transpose()?,
            id: given(self.id).map(|i| MessageId::parse(i, limits.max_id_bytes)).transpose()?,
        })
    }
}

/// Text fields have a size limit of their own, below the body limit.
pub fn bounded(text: &str, max: usize, what: &str) -> Result<String, Error> {
    if text.len() > max {
        return Err(Error::TooLarge(format!("{what} is longer than {max} bytes")));
    }
    Ok(text.to_owned())
}
