"""keras.io "Character-level recurrent sequence-to-sequence model": one-hot source and target texts with
start / end characters, an LSTM encoder whose ``return_state`` states start an LSTM decoder
(``initial_state``) trained with teacher forcing, a ``.keras`` save / load round trip, and inference
models rebuilt from the loaded model's ``input`` and layers, decoding one character at a time with
``predict``.

Tolerance: Keras's initial weights copied, ``shuffle=False``, no randomness in training: losses within 2%
and accuracies within 0.03 of Keras's; greedy decoding of held-out words must translate the same share
of them within 0.1 (one near-tie can change a decoded character).
"""
from __future__ import annotations

import numpy as np

from . import data as synthetic
from .harness import assert_band, assert_close, run_both, workdir

LATENT_DIM = 48


def seq2seq(keras, data, init, tmp_path):
    pairs, held_out = data
    keras.utils.set_random_seed(16)
    input_texts = [source for source, _ in pairs]
    target_texts = ["\t" + target + "\n" for _, target in pairs]
    input_characters = sorted(set("".join(input_texts)) | {" "})   # " " pads, as in the tutorial's texts
    target_characters = sorted(set("".join(target_texts)) | {" "})
    num_encoder_tokens, num_decoder_tokens = len(input_characters), len(target_characters)
    max_encoder_seq_length = max(len(t) for t in input_texts)
    max_decoder_seq_length = max(len(t) for t in target_texts)
    input_token_index = {char: i for i, char in enumerate(input_characters)}
    target_token_index = {char: i for i, char in enumerate(target_characters)}

    encoder_input_data = np.zeros((len(input_texts), max_encoder_seq_length, num_encoder_tokens), dtype="float32")
    decoder_input_data = np.zeros((len(input_texts), max_decoder_seq_length, num_decoder_tokens), dtype="float32")
    decoder_target_data = np.zeros((len(input_texts), max_decoder_seq_length, num_decoder_tokens), dtype="float32")
    for i, (input_text, target_text) in enumerate(zip(input_texts, target_texts)):
        for t, char in enumerate(input_text):
            encoder_input_data[i, t, input_token_index[char]] = 1.0
        encoder_input_data[i, t + 1:, input_token_index[" "]] = 1.0
        for t, char in enumerate(target_text):
            decoder_input_data[i, t, target_token_index[char]] = 1.0
            if t > 0:   # the target is ahead of the decoder input by one step, without the start character
                decoder_target_data[i, t - 1, target_token_index[char]] = 1.0
        decoder_input_data[i, t + 1:, target_token_index[" "]] = 1.0
        decoder_target_data[i, t:, target_token_index[" "]] = 1.0

    encoder_inputs = keras.Input(shape=(None, num_encoder_tokens))
    encoder = keras.layers.LSTM(LATENT_DIM, return_state=True, name="encoder_lstm")
    encoder_outputs, state_h, state_c = encoder(encoder_inputs)
    encoder_states = [state_h, state_c]
    decoder_inputs = keras.Input(shape=(None, num_decoder_tokens))
    decoder_lstm = keras.layers.LSTM(LATENT_DIM, return_sequences=True, return_state=True, name="decoder_lstm")
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    decoder_dense = keras.layers.Dense(num_decoder_tokens, activation="softmax", name="decoder_dense")
    decoder_outputs = decoder_dense(decoder_outputs)
    model = keras.Model([encoder_inputs, decoder_inputs], decoder_outputs)
    init(model)
    model.compile(optimizer=keras.optimizers.RMSprop(0.004), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit([encoder_input_data, decoder_input_data], decoder_target_data, batch_size=32,
                        epochs=8, validation_split=0.2, shuffle=False, verbose=0)
    path = str(workdir(keras, tmp_path) / "s2s_model.keras")
    model.save(path)

    # Inference: sample from the model restored from disk.
    model = keras.models.load_model(path)
    encoder_inputs = model.input[0]
    encoder_outputs, state_h_enc, state_c_enc = model.get_layer("encoder_lstm").output
    encoder_model = keras.Model(encoder_inputs, [state_h_enc, state_c_enc])
    decoder_inputs = model.input[1]
    decoder_state_input_h = keras.Input(shape=(LATENT_DIM,))
    decoder_state_input_c = keras.Input(shape=(LATENT_DIM,))
    decoder_states_inputs = [decoder_state_input_h, decoder_state_input_c]
    decoder_lstm = model.get_layer("decoder_lstm")
    decoder_outputs, state_h_dec, state_c_dec = decoder_lstm(decoder_inputs, initial_state=decoder_states_inputs)
    decoder_outputs = model.get_layer("decoder_dense")(decoder_outputs)
    decoder_model = keras.Model([decoder_inputs] + decoder_states_inputs,
                                [decoder_outputs, state_h_dec, state_c_dec])
    reverse_target_char_index = {i: char for char, i in target_token_index.items()}

    def decode_sequence(input_seq):
        states_value = encoder_model.predict(input_seq, verbose=0)
        target_seq = np.zeros((1, 1, num_decoder_tokens), dtype="float32")
        target_seq[0, 0, target_token_index["\t"]] = 1.0
        decoded_sentence = ""
        while True:
            output_tokens, h, c = decoder_model.predict([target_seq] + states_value, verbose=0)
            sampled_char = reverse_target_char_index[int(np.argmax(output_tokens[0, -1, :]))]
            if sampled_char == "\n" or len(decoded_sentence) > max_decoder_seq_length:
                break
            decoded_sentence += sampled_char
            target_seq = np.zeros((1, 1, num_decoder_tokens), dtype="float32")
            target_seq[0, 0, target_token_index[sampled_char]] = 1.0
            states_value = [h, c]
        return decoded_sentence

    correct = 0
    for source, target in held_out:
        seq = np.zeros((1, max_encoder_seq_length, num_encoder_tokens), dtype="float32")
        for t, char in enumerate(source):
            seq[0, t, input_token_index[char]] = 1.0
        seq[0, len(source):, input_token_index[" "]] = 1.0
        correct += decode_sequence(seq) == target
    logs = history.history
    return {"loss": logs["loss"][-1], "val_loss": logs["val_loss"][-1], "val_accuracy": logs["val_accuracy"][-1],
            "translated": correct / len(held_out)}


def test_seq2seq_translation(tmp_path):
    pairs = synthetic.phrases(840)
    data = pairs[:800], pairs[800:]
    want, got = run_both(seq2seq, data, copy_weights=True, tmp_path=tmp_path)
    assert_close(want, got, rtol=0.02, keys=["loss", "val_loss"])
    assert_band(want, got, 0.03, ["val_accuracy"])
    assert_band(want, got, 0.1, ["translated"])
