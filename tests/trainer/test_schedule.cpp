#include <gtest/gtest.h>

#include <cmath>

#include "trainer/schedule.h"

namespace tern {

TEST(Schedule, WarmupThenInverseSqrt) {
  OptimConfig o;
  o.lr = 1e-3, o.warmup_steps = 100, o.schedule = "inverse_sqrt";
  TrainLoopConfig t;
  TrainingSchedule s(o, t);
  EXPECT_DOUBLE_EQ(s.lr(1), 1e-5);
  EXPECT_DOUBLE_EQ(s.lr(50), 5e-4);
  EXPECT_DOUBLE_EQ(s.lr(100), 1e-3);
  EXPECT_DOUBLE_EQ(s.lr(400), 5e-4);  // 1e-3 * sqrt(100 / 400)
  o.min_lr = 6e-4;
  EXPECT_DOUBLE_EQ(s.lr(400), 6e-4);
}

TEST(Schedule, ConstantAndPlateauDecay) {
  OptimConfig o;
  o.lr = 0.1, o.warmup_steps = 0, o.schedule = "plateau", o.plateau_factor = 0.5, o.plateau_patience = 2;
  TrainLoopConfig t;
  TrainingSchedule s(o, t);
  EXPECT_DOUBLE_EQ(s.lr(7), 0.1);
  EXPECT_TRUE(s.record_validation(3.0));
  EXPECT_FALSE(s.record_validation(3.5));
  EXPECT_DOUBLE_EQ(s.lr(8), 0.1);  // one bad validation: patience 2 not reached
  EXPECT_FALSE(s.record_validation(3.2));
  EXPECT_DOUBLE_EQ(s.lr(9), 0.05);
  EXPECT_TRUE(s.record_validation(2.0));  // improvement resets the count, keeps the decay
  EXPECT_FALSE(s.record_validation(2.5));
  EXPECT_DOUBLE_EQ(s.lr(10), 0.05);
  o.schedule = "constant";
  EXPECT_DOUBLE_EQ(TrainingSchedule(o, t).lr(1000), 0.1);
}

TEST(Schedule, WhenToValidateSaveAndStop) {
  OptimConfig o;
  TrainLoopConfig t;
  t.max_steps = 100, t.valid_every = 30, t.save_every = 40, t.max_minutes = 5;
  TrainingSchedule s(o, t);
  auto a = s.after_step(30, 0);
  EXPECT_TRUE(a.validate && !a.save && !a.stop);
  a = s.after_step(40, 0);
  EXPECT_TRUE(!a.validate && a.save && !a.stop);
  a = s.after_step(100, 0);
  EXPECT_TRUE(a.validate && a.stop);  // a stop always validates
  a = s.after_step(41, 5.0);
  EXPECT_TRUE(a.stop && a.validate);  // wall-time limit
  t.valid_every = 0, t.save_every = 0;
  a = s.after_step(60, 0);
  EXPECT_TRUE(!a.validate && !a.save && !a.stop);
}

TEST(Schedule, EarlyStoppingAndStateRoundTrip) {
  OptimConfig o;
  o.schedule = "plateau", o.plateau_patience = 3;
  TrainLoopConfig t;
  t.early_stopping = 2;
  TrainingSchedule s(o, t);
  EXPECT_TRUE(std::isinf(s.best_loss()));
  s.record_validation(1.0);
  s.record_validation(1.5);
  EXPECT_FALSE(s.should_stop_early());
  s.record_validation(1.2);
  EXPECT_TRUE(s.should_stop_early());
  nlohmann::json meta;
  s.save(meta);
  TrainingSchedule r(o, t);
  r.load(meta);
  EXPECT_EQ(r.best_loss(), 1.0);
  EXPECT_EQ(r.validations_without_improvement(), 2);
  EXPECT_TRUE(r.should_stop_early());
  r.record_validation(2.0);  // the third bad validation decays on the restored count
  EXPECT_DOUBLE_EQ(r.lr(5000), s.lr(5000) * o.plateau_factor);
  TrainingSchedule fresh(o, t);
  nlohmann::json none;
  fresh.save(none);
  EXPECT_EQ(none["best_valid_loss"], -1.0);  // +inf is stored as -1
  r.load(none);
  EXPECT_TRUE(std::isinf(r.best_loss()));
  EXPECT_FALSE(r.record_final_validation(std::nan("")));
  EXPECT_TRUE(r.record_final_validation(0.5));
  EXPECT_EQ(r.validations_without_improvement(), 0);
}

}  // namespace tern
