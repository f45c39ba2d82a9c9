//! Requests awaiting replies on one connection. Redis answers in order, so
//! the replies read are handed out to the requests in the order they were
//! sent, each request taking as many as it had commands.

use std::collections::VecDeque;

use super::resp::Reply;

pub struct Outstanding<T> {
    /// Each request, and how many replies it waits for.
    queue: VecDeque<(T, usize)>,
    /// Replies already read for the request at the front.
    partial: Vec<Reply>,
}

impl<T> Default for Outstanding<T> {
    fn default() -> Self {
        Outstanding {
            queue: VecDeque::new(),
            partial: Vec::new(),
        }
    }
}

impl<T> Outstanding<T> {
    /// A request of `commands` commands went out.
    pub fn push(&mut self, request: T, commands: usize) {
        self.queue.push_back((request, commands));
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Every request still waiting, oldest first.
    pub fn requests(&self) -> impl Iterator<Item = &T> {
        self.queue.iter().map(|(r, _)| r)
    }

    /// The request sent first of those still waiting.
    pub fn oldest(&self) -> Option<&T> {
        self.queue.front().map(|(r, _)| r)
    }

    /// Hands the next reply read to the request it answers, and returns
    /// that request with all its replies once they are in; give the
    /// vector back with `recycle`, so a pipeline's replies cost no
    /// allocation. Err: a reply no request asked for (the connection is
    /// out of step and must be dropped).
    pub fn answer_one(&mut self, reply: Reply) -> Result<Option<(T, Vec<Reply>)>, String> {
        let Some(&(_, wanted)) = self.queue.front() else {
            return Err(format!("a reply nothing asked for: {reply:?}"));
        };
        self.partial.push(reply);
        if self.partial.len() < wanted {
            return Ok(None);
        }
        let (request, _) = self.queue.pop_front().expect("front checked above");
        Ok(Some((request, std::mem::take(&mut self.partial))))
    }

    /// The replies `answer_one` returned, for the next request's to reuse.
    pub fn recycle(&mut self, mut replies: Vec<Reply>) {
        // Unless replies for the next request came in the meantime.
        if self.partial.capacity() == 0 {
            replies.clear();
            self.partial = replies;
        }
    }

    /// The connection is gone: every waiting request, oldest first, with
    /// the replies that came for it (only the first can have some).
    pub fn drain(&mut self) -> Vec<(T, Vec<Reply>)> {
        let mut partial = std::mem::take(&mut self.partial);
        (self.queue.drain(..))
            .map(|(r, _)| (r, std::mem::take(&mut partial)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_go_to_requests_in_order_across_reads() {
        let mut f = Outstanding::default();
        f.push("a", 2);
        f.push("b", 1);
        f.push("c", 3);
        let mut seen = Vec::new();
        for reply in [Reply::Bulk, Reply::Int(1), Reply::Status, Reply::Bulk] {
            if let Some((request, replies)) = f.answer_one(reply).unwrap() {
                seen.push((request, replies.clone()));
                f.recycle(replies);
            }
        }
        assert_eq!(
            seen,
            vec![
                ("a", vec![Reply::Bulk, Reply::Int(1)]),
                ("b", vec![Reply::Status]),
            ]
        );
        assert_eq!((f.len(), f.oldest()), (1, Some(&"c")));
        assert_eq!(
            f.drain(),
            vec![("c", vec![Reply::Bulk])],
            "the reply that came"
        );
        assert!(f.is_empty());
    }

    #[test]
    fn a_recycled_vector_never_takes_the_next_requests_replies() {
        let mut f = Outstanding::default();
        f.push("a", 1);
        f.push("b", 2);
        let (a, replies) = f.answer_one(Reply::Bulk).unwrap().unwrap();
        assert_eq!((a, &replies[..]), ("a", &[Reply::Bulk][..]));
        assert_eq!(f.answer_one(Reply::Int(3)), Ok(None), "b's first");
        f.recycle(replies);
        let (b, replies) = f.answer_one(Reply::Status).unwrap().unwrap();
        assert_eq!(
            (b, &replies[..]),
            ("b", &[Reply::Int(3), Reply::Status][..])
        );
    }

    #[test]
    fn a_reply_nobody_asked_for_is_an_error() {
        let mut f: Outstanding<()> = Outstanding::default();
        assert!(f.answer_one(Reply::Bulk).is_err());
    }
}
