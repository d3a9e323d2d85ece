"""keras.io's reinforcement-learning examples (``examples/rl``) as ``program(tf, keras) -> {name: array}``.

Each keeps its example's calls (an eager ``GradientTape`` over an episode, ``np.random.choice`` on the
softmax, ``model_target.predict``, ``@tf.function`` updates, soft target updates by ``assign``,
``tf.random.categorical``) on small networks, with a deterministic NumPy stand-in for the gym environment
and seeded weights, so TensorFlow and onnxforge see the same episodes (``tf_oracle.py`` runs TensorFlow's).
"""
from __future__ import annotations
import numpy as np


class CartPole:
    """A deterministic cart-pole (Barto et al.'s equations), CartPole-v0's observation and reward."""

    def __init__(self, seed: int = 0, max_steps: int = 30):
        self.rng = np.random.default_rng(seed)
        self.max_steps = max_steps

    def reset(self):
        self.state = self.rng.uniform(-0.05, 0.05, 4)
        self.t = 0
        return self.state.copy()

    def step(self, action):
        x, x_dot, theta, theta_dot = self.state
        force = 10.0 if int(action) == 1 else -10.0
        cos, sin = np.cos(theta), np.sin(theta)
        temp = (force + 0.05 * theta_dot ** 2 * sin) / 1.1
        theta_acc = (9.8 * sin - cos * temp) / (0.5 * (4.0 / 3.0 - 0.1 * cos ** 2 / 1.1))
        x_acc = temp - 0.05 * theta_acc * cos / 1.1
        self.state = np.array([x + 0.02 * x_dot, x_dot + 0.02 * x_acc, theta + 0.02 * theta_dot,
                               theta_dot + 0.02 * theta_acc])
        self.t += 1
        done = bool(abs(self.state[0]) > 2.4 or abs(self.state[2]) > 0.21 or self.t >= self.max_steps)
        return self.state.copy(), 1.0, done, {}


def seeded_weights(model, seed):
    """The same weights in both frameworks (moving variances kept positive)."""
    rng = np.random.default_rng(seed)
    values = [rng.normal(0, 0.3, tuple(w.shape)).astype("float32") for w in model.weights]
    model.set_weights([np.abs(v) + 0.5 if "variance" in w.name else v for v, w in zip(values, model.weights)])


def actor_critic(tf, keras, episodes=2):
    layers = keras.layers
    env = CartPole(0, max_steps=15)
    gamma = 0.99
    eps = np.finfo(np.float32).eps.item()
    inputs = layers.Input(shape=(4,))
    common = layers.Dense(16, activation="relu")(inputs)
    action = layers.Dense(2, activation="softmax")(common)
    critic = layers.Dense(1)(common)
    model = keras.Model(inputs=inputs, outputs=[action, critic])
    seeded_weights(model, 1)
    optimizer = keras.optimizers.Adam(learning_rate=0.01)
    huber_loss = keras.losses.Huber()
    choose = np.random.RandomState(42)
    action_probs_history, critic_value_history, rewards_history = [], [], []
    losses, rewards = [], []
    for _ in range(episodes):
        state = env.reset()
        episode_reward = 0
        with tf.GradientTape() as tape:
            for _ in range(1, 100):
                state = tf.convert_to_tensor(state)
                state = tf.expand_dims(state, 0)
                action_probs, critic_value = model(state)
                critic_value_history.append(critic_value[0, 0])
                action = choose.choice(2, p=np.squeeze(action_probs))
                action_probs_history.append(tf.math.log(action_probs[0, action]))
                state, reward, done, _ = env.step(action)
                rewards_history.append(reward)
                episode_reward += reward
                if done:
                    break
            returns = []
            discounted_sum = 0
            for r in rewards_history[::-1]:
                discounted_sum = r + gamma * discounted_sum
                returns.insert(0, discounted_sum)
            returns = np.array(returns)
            returns = ((returns - np.mean(returns)) / (np.std(returns) + eps)).tolist()
            actor_losses, critic_losses = [], []
            for log_prob, value, ret in zip(action_probs_history, critic_value_history, returns):
                diff = ret - value
                actor_losses.append(-log_prob * diff)
                critic_losses.append(huber_loss(tf.expand_dims(value, 0), tf.expand_dims(ret, 0)))
            loss_value = sum(actor_losses) + sum(critic_losses)
            grads = tape.gradient(loss_value, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            action_probs_history.clear()
            critic_value_history.clear()
            rewards_history.clear()
        losses.append(float(loss_value))
        rewards.append(episode_reward)
    return {"loss": np.array(losses), "reward": np.array(rewards),
            "weights": np.concatenate([np.ravel(w) for w in model.get_weights()])}


def dqn(tf, keras, frames=24):
    """deep_q_network_breakout on (4, 12, 12) frame stacks from a tiny deterministic game."""
    layers = keras.layers
    num_actions = 4

    def create_q_model():
        return keras.Sequential([
            layers.Lambda(lambda tensor: keras.ops.transpose(tensor, [0, 2, 3, 1]),
                          output_shape=(12, 12, 4), input_shape=(4, 12, 12)),
            layers.Conv2D(8, 4, strides=2, activation="relu"),
            layers.Conv2D(8, 3, strides=1, activation="relu"),
            layers.Flatten(),
            layers.Dense(16, activation="relu"),
            layers.Dense(num_actions, activation="linear"),
        ])

    model = create_q_model()
    model_target = create_q_model()
    seeded_weights(model, 2)
    seeded_weights(model_target, 3)
    optimizer = keras.optimizers.Adam(learning_rate=0.001, clipnorm=1.0)
    loss_function = keras.losses.Huber()
    rng = np.random.RandomState(0)
    frames_seen = rng.uniform(0, 1, (frames + 1, 4, 12, 12)).astype("float32")
    action_history, state_history, state_next_history, rewards_history, done_history = [], [], [], [], []
    batch_size, gamma, epsilon = 8, 0.99, 0.5
    losses, actions = [], []
    state = frames_seen[0]
    for frame_count in range(1, frames + 1):
        if epsilon > rng.rand(1)[0]:
            action = rng.choice(num_actions)
        else:
            state_tensor = keras.ops.convert_to_tensor(state)
            state_tensor = keras.ops.expand_dims(state_tensor, 0)
            action_probs = model(state_tensor, training=False)
            action = keras.ops.argmax(action_probs[0]).numpy()
        actions.append(int(action))
        state_next = np.array(frames_seen[frame_count])
        reward = float(action == frame_count % num_actions)
        done = frame_count % 7 == 0
        action_history.append(action)
        state_history.append(state)
        state_next_history.append(state_next)
        done_history.append(done)
        rewards_history.append(reward)
        state = state_next
        if frame_count % 4 == 0 and len(done_history) > batch_size:
            indices = rng.choice(range(len(done_history)), size=batch_size)
            state_sample = np.array([state_history[i] for i in indices])
            state_next_sample = np.array([state_next_history[i] for i in indices])
            rewards_sample = [rewards_history[i] for i in indices]
            action_sample = [action_history[i] for i in indices]
            done_sample = keras.ops.convert_to_tensor([float(done_history[i]) for i in indices])
            future_rewards = model_target.predict(state_next_sample, verbose=0)
            updated_q_values = rewards_sample + gamma * keras.ops.amax(future_rewards, axis=1)
            updated_q_values = updated_q_values * (1 - done_sample) - done_sample
            masks = keras.ops.one_hot(action_sample, num_actions)
            with tf.GradientTape() as tape:
                q_values = model(state_sample)
                q_action = keras.ops.sum(keras.ops.multiply(q_values, masks), axis=1)
                loss = loss_function(updated_q_values, q_action)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            losses.append(float(loss))
        if frame_count % 12 == 0:
            model_target.set_weights(model.get_weights())
    # the tf.* spelling of the same update (tf.one_hot, tf.reduce_sum(tf.multiply(...)))
    masks = tf.one_hot(action_history[:batch_size], num_actions)
    with tf.GradientTape() as tape:
        q_values = model(np.array(state_history[:batch_size]), training=False)
        q_action = tf.reduce_sum(tf.multiply(q_values, masks), axis=1)
        loss = loss_function(np.array(rewards_history[:batch_size], "float32"), q_action)
    grads = tape.gradient(loss, model.trainable_variables)
    return {"loss": np.array(losses + [float(loss)]), "actions": np.array(actions),
            "grads": np.concatenate([np.ravel(np.asarray(g)) for g in grads]),
            "target": np.concatenate([np.ravel(w) for w in model_target.get_weights()])}


class Pendulum:
    """Pendulum-v1's dynamics and reward, deterministic from a seed."""

    def __init__(self, seed=0, max_steps=12):
        self.rng = np.random.default_rng(seed)
        self.max_steps = max_steps

    def reset(self):
        self.th, self.thdot = self.rng.uniform(-np.pi, np.pi), self.rng.uniform(-1, 1)
        self.t = 0
        return self._obs()

    def _obs(self):
        return np.array([np.cos(self.th), np.sin(self.th), self.thdot])

    def step(self, action):
        u = float(np.clip(np.asarray(action).ravel()[0], -2.0, 2.0))
        angle = ((self.th + np.pi) % (2 * np.pi)) - np.pi
        cost = angle ** 2 + 0.1 * self.thdot ** 2 + 0.001 * u ** 2
        self.thdot = np.clip(self.thdot + (3 * 10.0 / 2 * np.sin(self.th) + 3.0 * u) * 0.05, -8, 8)
        self.th = self.th + self.thdot * 0.05
        self.t += 1
        return self._obs(), -cost, self.t >= self.max_steps, {}


def ddpg(tf, keras, episodes=2):
    layers = keras.layers
    env = Pendulum(0)
    num_states, num_actions, upper_bound, lower_bound = 3, 1, 2.0, -2.0

    class OUActionNoise:
        def __init__(self, mean, std_deviation, theta=0.15, dt=1e-2):
            self.theta, self.mean, self.std_dev, self.dt = theta, mean, std_deviation, dt
            self.rng = np.random.RandomState(5)
            self.x_prev = np.zeros_like(self.mean)

        def __call__(self):
            x = (self.x_prev + self.theta * (self.mean - self.x_prev) * self.dt
                 + self.std_dev * np.sqrt(self.dt) * self.rng.normal(size=self.mean.shape))
            self.x_prev = x
            return x

    class Buffer:
        def __init__(self, buffer_capacity=100, batch_size=8):
            self.buffer_capacity, self.batch_size, self.buffer_counter = buffer_capacity, batch_size, 0
            self.state_buffer = np.zeros((self.buffer_capacity, num_states))
            self.action_buffer = np.zeros((self.buffer_capacity, num_actions))
            self.reward_buffer = np.zeros((self.buffer_capacity, 1))
            self.next_state_buffer = np.zeros((self.buffer_capacity, num_states))
            self.rng = np.random.RandomState(7)

        def record(self, obs_tuple):
            index = self.buffer_counter % self.buffer_capacity
            self.state_buffer[index] = obs_tuple[0]
            self.action_buffer[index] = obs_tuple[1]
            self.reward_buffer[index] = obs_tuple[2]
            self.next_state_buffer[index] = obs_tuple[3]
            self.buffer_counter += 1

        @tf.function
        def update(self, state_batch, action_batch, reward_batch, next_state_batch):
            with tf.GradientTape() as tape:
                target_actions = target_actor(next_state_batch, training=True)
                y = reward_batch + gamma * target_critic([next_state_batch, target_actions], training=True)
                critic_value = critic_model([state_batch, action_batch], training=True)
                critic_loss = tf.math.reduce_mean(tf.math.square(y - critic_value))
            critic_grad = tape.gradient(critic_loss, critic_model.trainable_variables)
            critic_optimizer.apply_gradients(zip(critic_grad, critic_model.trainable_variables))
            with tf.GradientTape() as tape:
                actions = actor_model(state_batch, training=True)
                critic_value = critic_model([state_batch, actions], training=True)
                actor_loss = -tf.math.reduce_mean(critic_value)
            actor_grad = tape.gradient(actor_loss, actor_model.trainable_variables)
            actor_optimizer.apply_gradients(zip(actor_grad, actor_model.trainable_variables))
            return critic_loss, actor_loss

        def learn(self):
            record_range = min(self.buffer_counter, self.buffer_capacity)
            batch_indices = self.rng.choice(record_range, self.batch_size)
            state_batch = tf.convert_to_tensor(self.state_buffer[batch_indices])
            action_batch = tf.convert_to_tensor(self.action_buffer[batch_indices])
            reward_batch = tf.convert_to_tensor(self.reward_buffer[batch_indices])
            reward_batch = tf.cast(reward_batch, dtype=tf.float32)
            next_state_batch = tf.convert_to_tensor(self.next_state_buffer[batch_indices])
            return self.update(state_batch, action_batch, reward_batch, next_state_batch)

    def update_target(target_weights, weights, tau):
        for (a, b) in zip(target_weights, weights):
            a.assign(b * tau + a * (1 - tau))

    if tf.__name__ == "onnxforge":
        # The example's @tf.function (tf.keras 2); Keras 3's variables on TensorFlow cannot be its arguments.
        update_target = tf.function(update_target)

    def get_actor():
        last_init = tf.random_uniform_initializer(minval=-0.003, maxval=0.003)
        inputs = layers.Input(shape=(num_states,))
        out = layers.Dense(16, activation="relu")(inputs)
        out = layers.BatchNormalization()(out)
        out = layers.Dense(16, activation="relu")(out)
        outputs = layers.Dense(1, activation="tanh", kernel_initializer=last_init)(out)
        outputs = outputs * upper_bound
        return tf.keras.Model(inputs, outputs)

    def get_critic():
        state_input = layers.Input(shape=(num_states,))
        state_out = layers.Dense(8, activation="relu")(state_input)
        state_out = layers.BatchNormalization()(state_out)
        action_input = layers.Input(shape=(num_actions,))
        action_out = layers.Dense(8, activation="relu")(action_input)
        concat = layers.Concatenate()([state_out, action_out])
        out = layers.Dense(16, activation="relu")(concat)
        outputs = layers.Dense(1)(out)
        return tf.keras.Model([state_input, action_input], outputs)

    def policy(state, noise_object):
        sampled_actions = tf.squeeze(actor_model(state))
        noise = noise_object()
        sampled_actions = sampled_actions.numpy() + noise
        legal_action = np.clip(sampled_actions, lower_bound, upper_bound)
        return [np.squeeze(legal_action)]

    ou_noise = OUActionNoise(mean=np.zeros(1), std_deviation=0.2 * np.ones(1))
    actor_model, critic_model = get_actor(), get_critic()
    seeded_weights(actor_model, 11)
    seeded_weights(critic_model, 12)
    target_actor, target_critic = get_actor(), get_critic()
    target_actor.set_weights(actor_model.get_weights())
    target_critic.set_weights(critic_model.get_weights())
    critic_optimizer = tf.keras.optimizers.Adam(0.002)
    actor_optimizer = tf.keras.optimizers.Adam(0.001)
    gamma, tau = 0.99, 0.05
    buffer = Buffer(100, 8)
    rewards, losses = [], []
    for _ in range(episodes):
        prev_state = env.reset()
        episodic_reward = 0
        while True:
            tf_prev_state = tf.expand_dims(tf.convert_to_tensor(prev_state), 0)
            action = policy(tf_prev_state, ou_noise)
            state, reward, done, info = env.step(action)
            buffer.record((prev_state, action, reward, state))
            episodic_reward += reward
            losses.append([float(v) for v in buffer.learn()])
            update_target(target_actor.variables, actor_model.variables, tau)
            update_target(target_critic.variables, critic_model.variables, tau)
            if done:
                break
            prev_state = state
        rewards.append(episodic_reward)
    return {"reward": np.array(rewards), "losses": np.array(losses),
            "target_actor": np.concatenate([np.ravel(w) for w in target_actor.get_weights()]),
            "target_critic": np.concatenate([np.ravel(w) for w in target_critic.get_weights()]),
            "actor": np.concatenate([np.ravel(w) for w in actor_model.get_weights()])}


def ppo(tf, keras, steps_per_epoch=40, epochs=2):
    layers = keras.layers
    env = CartPole(3)
    num_actions, obs_dim, clip_ratio = 2, 4, 0.2

    def mlp(x, sizes, activation=tf.tanh, output_activation=None):
        for size in sizes[:-1]:
            x = layers.Dense(units=size, activation=activation)(x)
        return layers.Dense(units=sizes[-1], activation=output_activation)(x)

    observation_input = keras.Input(shape=(obs_dim,), dtype=tf.float32)
    logits = mlp(observation_input, [16, 16, num_actions], tf.tanh, None)
    actor = keras.Model(inputs=observation_input, outputs=logits)
    value = keras.ops.squeeze(mlp(observation_input, [16, 16, 1], tf.tanh, None), axis=1)
    critic = keras.Model(inputs=observation_input, outputs=value)
    seeded_weights(actor, 21)
    seeded_weights(critic, 22)
    policy_optimizer = keras.optimizers.Adam(learning_rate=3e-3)
    value_optimizer = keras.optimizers.Adam(learning_rate=1e-2)

    def logprobabilities(logits, a):
        logprobabilities_all = keras.ops.log_softmax(logits)
        return tf.reduce_sum(tf.one_hot(a, num_actions) * logprobabilities_all, axis=1)

    @tf.function
    def sample_action(observation):
        logits = actor(observation)
        action = tf.squeeze(tf.random.categorical(logits, 1), axis=1)
        return logits, action

    @tf.function
    def train_policy(observation_buffer, action_buffer, logprobability_buffer, advantage_buffer):
        with tf.GradientTape() as tape:
            ratio = tf.exp(logprobabilities(actor(observation_buffer), action_buffer) - logprobability_buffer)
            min_advantage = tf.where(advantage_buffer > 0, (1 + clip_ratio) * advantage_buffer,
                                     (1 - clip_ratio) * advantage_buffer)
            policy_loss = -tf.reduce_mean(tf.minimum(ratio * advantage_buffer, min_advantage))
        policy_grads = tape.gradient(policy_loss, actor.trainable_variables)
        policy_optimizer.apply_gradients(zip(policy_grads, actor.trainable_variables))
        kl = tf.reduce_mean(logprobability_buffer - logprobabilities(actor(observation_buffer), action_buffer))
        return tf.reduce_sum(kl)

    @tf.function
    def train_value_function(observation_buffer, return_buffer):
        with tf.GradientTape() as tape:
            value_loss = tf.reduce_mean((return_buffer - critic(observation_buffer)) ** 2)
        value_grads = tape.gradient(value_loss, critic.trainable_variables)
        value_optimizer.apply_gradients(zip(value_grads, critic.trainable_variables))
        return value_loss

    # The categorical draws: the same distribution as the logits say, checked by counting.
    probe = np.array([[0.3, -0.2, 0.1, 0.05]], "float32")
    draws = np.array([int(sample_action(probe)[1][0].numpy()) for _ in range(300)])
    probe_logits = np.asarray(actor(probe)).ravel()
    out = {"draw_freq": np.array([np.mean(draws == 1)]),
           "draw_p": np.array([np.exp(probe_logits[1]) / np.exp(probe_logits).sum()])}
    # The training loop on actions chosen deterministically (argmax), so both frameworks see the same data.
    observation_buffer = np.zeros((steps_per_epoch, obs_dim), np.float32)
    action_buffer = np.zeros(steps_per_epoch, np.int32)
    reward_buffer = np.zeros(steps_per_epoch, np.float32)
    value_buffer = np.zeros(steps_per_epoch, np.float32)
    logprobability_buffer = np.zeros(steps_per_epoch, np.float32)
    kls, value_losses = [], []
    observation = env.reset()
    for _ in range(epochs):
        for t in range(steps_per_epoch):
            observation = observation.reshape(1, -1)
            logits, _ = sample_action(observation)
            action = tf.argmax(logits, axis=1)
            observation_new, reward, done, _ = env.step(action[0].numpy())
            value_t = critic(observation)
            logprobability_t = logprobabilities(logits, action)
            observation_buffer[t] = observation
            action_buffer[t] = action[0]
            reward_buffer[t] = reward
            value_buffer[t] = value_t[0]
            logprobability_buffer[t] = logprobability_t[0]
            observation = observation_new
            if done:
                observation = env.reset()
        deltas = reward_buffer + 0.99 * np.append(value_buffer[1:], 0) - value_buffer
        advantage_buffer = ((deltas - deltas.mean()) / deltas.std()).astype("float32")
        return_buffer = np.cumsum(reward_buffer[::-1])[::-1].astype("float32") / 10
        for _ in range(3):
            kl = train_policy(observation_buffer, action_buffer, logprobability_buffer, advantage_buffer)
            kls.append(float(kl))
            if kl > 1.5 * 0.01:
                break
        for _ in range(3):
            value_losses.append(float(train_value_function(observation_buffer, return_buffer)))
    out.update(kl=np.array(kls), value_loss=np.array(value_losses),
               actor=np.concatenate([np.ravel(w) for w in actor.get_weights()]))
    return out
