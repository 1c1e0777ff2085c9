-- A sequence, so concurrent writers into different rooms never wait on each other.
CREATE SEQUENCE state_group_id_seq;
